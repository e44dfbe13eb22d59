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


def turned_losses(x: torch.Tensor, target: Target, angles: list[float]) -> list[float]:
    """Loss of each pattern x[i] (B, H, W, C), grown with perception turned by angles[i] degrees,
    against the target turned by the same angle about the seed cell."""
    H, W = target.shape
    losses = []
    for i, a in enumerate(angles):
        turned = rotate_image(target.rgba, a, (H // 2, W // 2)).to(x.device)
        losses.append(float(rgba_loss(x[i : i + 1], turned)[0]))
    return losses
