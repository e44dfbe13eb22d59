"""States: the seed, what a state looks like, and how far it is from a target."""

from __future__ import annotations

import torch

from .config import NCAConfig


def seed_state(config: NCAConfig, *shape: int, batch: int = 1, device=None) -> torch.Tensor:
    """A single living cell in the centre of a grid of `shape` (e.g. height, width): channels 3.. set
    to 1. -> (batch, *shape, C)"""
    x = torch.zeros(batch, *shape, config.channels, device=device)
    x[(slice(None),) + tuple(n // 2 for n in shape) + (slice(3, None),)] = 1.0
    return x


def render_rgb(x: torch.Tensor) -> torch.Tensor:
    """Composite premultiplied RGBA over white. (..., C) float -> (..., 3) uint8."""
    alpha = x[..., 3:4].clamp(0.0, 1.0)
    rgb = (1.0 - alpha + x[..., :3]).clamp(0.0, 1.0)
    return (rgb * 255.0 + 0.5).to(torch.uint8)


def rgba_loss(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the RGBA channels of (B, *S, C) against a (*S, 4) target, per sample. -> (B,)"""
    diff = (x[..., :4] - target).square()
    return diff.mean(dim=tuple(range(1, diff.ndim)))
