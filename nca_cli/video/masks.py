"""Which pixels survive: a random mask drawn afresh for every frame, or one fixed sensor pattern.

Each pixel survives with probability `keep`, independently. Masks come from a seeded
torch.Generator on the CPU, so the same seed gives the same masks on any device, and every method
scored on a clip (the NCA and each baseline) sees exactly the same pixels.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch

from ..errors import InvalidOption


def check_keep(keep: float) -> None:
    """The surviving fraction must be in (0, 1]."""
    if not (math.isfinite(keep) and 0.0 < keep <= 1.0):
        raise InvalidOption("keep", f"must be in (0, 1], got {keep:g}")


def random_masks(shape: tuple[int, ...], keep: float, generator: torch.Generator) -> torch.Tensor:
    """Pixels that survive, each with probability `keep`: (*shape) bool, on the CPU."""
    return torch.rand(shape, generator=generator) < keep


def frame_masks(frames: int, size: tuple[int, int], keep: float, fixed: bool = False,
                seed: int = 0) -> Iterator[torch.Tensor]:
    """The surviving pixels of each of `frames` frames of `size` (height, width): a fresh draw per
    frame, or with `fixed` the same draw for all. Yields (H, W) bool on the CPU."""
    check_keep(keep)
    generator = torch.Generator().manual_seed(seed)
    mask = random_masks(size, keep, generator)
    for _ in range(frames):
        yield mask
        if not fixed:
            mask = random_masks(size, keep, generator)
