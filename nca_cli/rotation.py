"""Turning patterns: parse angle lists and rotate target images to compare rotated growth against."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import NCAError


def parse_angles(text: str) -> list[float]:
    """'0,45,90' -> [0.0, 45.0, 90.0] (degrees)."""
    try:
        angles = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise NCAError(f"invalid --theta {text!r}: expected degrees, e.g. 45 or 0,45,90") from None
    if not angles or not all(math.isfinite(a) for a in angles):
        raise NCAError(f"invalid --theta {text!r}: expected degrees, e.g. 45 or 0,45,90")
    return angles


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
