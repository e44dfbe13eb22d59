"""Damage masks: which cells of a grid to kill. Masks are (B, H, W) bool, True = killed."""

from __future__ import annotations

import torch


def circle_mask(height: int, width: int, cy: torch.Tensor, cx: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Discs of the given centres and radii, in cells. cy, cx, radius: (B,) -> (B, H, W) bool."""
    yy = torch.arange(height, dtype=torch.float32, device=cy.device).view(1, -1, 1)
    xx = torch.arange(width, dtype=torch.float32, device=cy.device).view(1, 1, -1)
    dist2 = (yy - cy.view(-1, 1, 1)).square() + (xx - cx.view(-1, 1, 1)).square()
    return dist2 < radius.view(-1, 1, 1).square()


def random_circle_masks(n: int, height: int, width: int, generator: torch.Generator | None = None,
                        device=None) -> torch.Tensor:
    """The article's training damage: discs centred in the middle half of the grid, radius 5%-20% of its width.

    Returns (n, H, W) bool.
    """
    u = torch.rand(3, n, generator=generator, device=device)
    cy = (u[0] * 0.5 + 0.25) * height
    cx = (u[1] * 0.5 + 0.25) * width
    radius = (u[2] * 0.15 + 0.05) * width
    return circle_mask(height, width, cy, cx, radius)


def apply_damage(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero every channel of the masked cells. x: (B, H, W, C), mask: (B, H, W) or (H, W) bool."""
    return x * (~mask).unsqueeze(-1).to(x.dtype)
