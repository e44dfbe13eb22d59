"""Turning patterns: rotate target images, to score growth with turned perception against them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..engine import rgba_loss
from ..targets import Target


def rotate_image(image: torch.Tensor, degrees: float, center: tuple[float, float]) -> torch.Tensor:
    """Rotate (H, W, K) by `degrees` about `center` (row, col), as a pattern grown with perception
    rotated by that angle turns (counter-clockwise on screen for positive angles). Bilinear;
    outside the picture is zero. Exact for multiples of 90 degrees about a cell centre.
    """
    H, W = image.shape[:2]
    a = math.radians(degrees)
    rows = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W) - center[0]
    cols = torch.arange(W, dtype=torch.float32)[None, :].expand(H, W) - center[1]
    # Where each output cell comes from: the inverse rotation of its offset from the centre.
    src_row = math.cos(a) * rows + math.sin(a) * cols + center[0]
    src_col = -math.sin(a) * rows + math.cos(a) * cols + center[1]
    grid = torch.stack([src_col / (W - 1) * 2 - 1, src_row / (H - 1) * 2 - 1], dim=-1)[None]
    out = F.grid_sample(image.permute(2, 0, 1)[None].float(), grid, mode="bilinear",
                        padding_mode="zeros", align_corners=True)
    return out[0].permute(1, 2, 0)


# 3D: the grid dim of each world axis (x = W, y = H, z = D), and the plane each axis turns (as the
# engine's perception turns: the first axis towards the second).
GRID_DIM = {"x": 2, "y": 1, "z": 0}
TURNED_PLANE = {"z": ("x", "y"), "x": ("y", "z"), "y": ("z", "x")}


def rotate_volume(volume: torch.Tensor, degrees: float, axis: str, center: tuple[float, float, float]) -> torch.Tensor:
    """Rotate a voxel grid (D, H, W, K) by `degrees` about `axis` (x, y or z) through `center`
    (d, h, w), as a body grown with perception turned by that angle about that axis turns.
    Trilinear; outside the grid is zero. Exact for multiples of 90 degrees about a cell centre."""
    shape = volume.shape[:3]
    a = math.radians(degrees)
    coords = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) - c for n, c in zip(shape, center)], indexing="ij")
    source = list(coords)  # (d, h, w) offsets from the centre
    first, second = (GRID_DIM[k] for k in TURNED_PLANE[axis])
    source[first] = math.cos(a) * coords[first] - math.sin(a) * coords[second]
    source[second] = math.sin(a) * coords[first] + math.cos(a) * coords[second]
    normalised = [(s + c) / max(n - 1, 1) * 2 - 1 for s, c, n in zip(source, center, shape)]
    grid = torch.stack(normalised[::-1], dim=-1)[None]  # grid_sample wants (x, y, z) = (w, h, d)
    out = F.grid_sample(volume.permute(3, 0, 1, 2)[None].float(), grid, mode="bilinear",
                        padding_mode="zeros", align_corners=True)
    return out[0].permute(1, 2, 3, 0)


def turned_target(target: Target, degrees: float, axis: str = "z") -> torch.Tensor:
    """The target turned by `degrees` about the seed cell (and about `axis` in a voxel body)."""
    centre = tuple(n // 2 for n in target.shape)
    if target.dims == 3:
        return rotate_volume(target.rgba, degrees, axis, centre)
    return rotate_image(target.rgba, degrees, centre)


def turned_losses(x: torch.Tensor, target: Target, angles: list[float], axis: str = "z") -> list[float]:
    """Loss of each pattern x[i] (B, *S, C), grown with perception turned by angles[i] degrees (about
    `axis` in a voxel body), against the target turned by the same angle about the seed cell."""
    losses = []
    for i, a in enumerate(angles):
        turned = turned_target(target, a, axis).to(x.device)
        losses.append(float(rgba_loss(x[i : i + 1], turned)[0]))
    return losses
