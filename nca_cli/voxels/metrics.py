"""How close a grown voxel body is to its target: occupancy IoU and colour error.

A voxel is occupied where alpha exceeds OCCUPIED (0.1, the alive threshold, what the renderer
draws as solid). Colour error is the mean squared error of premultiplied RGB (0-1) over the
target's occupied voxels, so a body of the right shape in the wrong colours scores badly even
where its occupancy is perfect.
"""

from __future__ import annotations

import torch

OCCUPIED = 0.1  # alpha above which a voxel counts as part of the body


def occupancy(x: torch.Tensor) -> torch.Tensor:
    """Occupied voxels of states or targets (..., C >= 4). -> (...) bool"""
    return x[..., 3] > OCCUPIED


def occupancy_iou(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of the occupied voxels of each state of x (B, *S, C) and of the
    target (*S, 4). -> (B,); 1.0 where both are empty."""
    grown, wanted = occupancy(x), occupancy(target).expand(x.shape[:-1])
    inter = (grown & wanted).flatten(1).sum(1).float()
    union = (grown | wanted).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def colour_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of premultiplied RGB over the target's occupied voxels, for each state
    of x (B, *S, C) against the target (*S, 4). -> (B,); 0.0 for an empty target."""
    wanted = occupancy(target)
    count = wanted.sum().clamp_min(1)
    error = (x[..., :3] - target[..., :3]).square().sum(-1) / 3  # (B, *S)
    return (error * wanted).flatten(1).sum(1) / count


def body_scores(x: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean occupancy IoU and colour MSE of the states x (B, *S, C) against target (*S, 4)."""
    return {"iou": float(occupancy_iou(x, target).mean()), "colour_mse": float(colour_mse(x, target).mean())}
