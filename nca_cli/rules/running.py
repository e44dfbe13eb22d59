"""Running a rule, learned or hand-written, on grids: starting grids, the run, comparing two rules
step by step, and pictures of states.

Grids are (B, H, W) uint8 states. A learned rule runs on the edges asked for (its weights do not
depend on them), a hand-written one through the simulator.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ..engine import NCA
from ..errors import NCAError
from . import simulate
from .learned import run_model, states_of
from .notation import Rule
from .rle import Pattern

Source = NCA | Rule
# State 0 white, 1 black (live; an electron head), then colours (a tail, a conductor, dying states).
PALETTE = np.array([(255, 255, 255), (0, 0, 0), (255, 128, 0), (0, 128, 255), (200, 30, 30), (40, 160, 60),
                    (140, 60, 180), (120, 90, 40)], dtype=np.uint8)


def states_of_source(source: Source) -> int:
    return states_of(source) if isinstance(source, NCA) else source.states


def with_padding(model: NCA, padding: str) -> NCA:
    """The same learned rule on other edges."""
    if model.config.padding == padding:
        return model
    moved = NCA(dataclasses.replace(model.config, padding=padding))
    moved.load_state_dict(model.state_dict())
    return moved.to(next(model.parameters()).device).eval()


def run(source: Source, grids: np.ndarray, steps: int, padding: str,
        on_step: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """`steps` steps of a learned or hand-written rule from (B, H, W); on_step(k, grid) after each."""
    if isinstance(source, NCA):
        return run_model(with_padding(source, padding), grids, steps, on_step)
    return simulate.run(source, grids, steps, padding, on_step)


def first_difference(a: Source, b: Source, grids: np.ndarray, steps: int, padding: str) -> tuple[int, int] | None:
    """Run both rules side by side: the first step whose grids differ and how many cells differ
    there, or None if they agree at every step."""
    frames: list[np.ndarray] = []
    run(b, grids, steps, padding, on_step=lambda k, g: frames.append(g))
    found: list[tuple[int, int]] = []

    def compare(k: int, grid: np.ndarray) -> None:
        if not found and not np.array_equal(grid, frames[k]):
            found.append((k, int((grid != frames[k]).sum())))

    run(a, grids, steps, padding, on_step=compare)
    return found[0] if found else None


def place(pattern: Pattern, grid: tuple[int, int]) -> np.ndarray:
    """A pattern on an empty grid (H, W): where its #CXRLE position puts it on a bounded grid of
    that size, else centred. -> (H, W) uint8"""
    H, W = grid
    h, w = pattern.cells.shape
    if h > H or w > W:
        raise NCAError(f"the pattern ({h}x{w}) does not fit the grid ({H}x{W})")
    if pattern.position is not None and pattern.grid == grid:
        top, left = pattern.position[1] + H // 2, pattern.position[0] + W // 2
    else:
        top, left = (H - h) // 2, (W - w) // 2
    if not (0 <= top <= H - h and 0 <= left <= W - w):
        raise NCAError(f"the pattern's position puts it outside the {H}x{W} grid")
    cells = np.zeros(grid, dtype=np.uint8)
    cells[top:top + h, left:left + w] = pattern.cells
    return cells


def soups(count: int, grid: tuple[int, int], states: int, density: float, seed: int) -> np.ndarray:
    """Random grids: each cell non-empty with probability `density`, its state then uniform among
    the non-empty ones. -> (count, H, W) uint8"""
    if not 0.0 <= density <= 1.0:
        raise NCAError(f"density must be between 0 and 1, got {density}")
    rng = np.random.default_rng(seed)
    alive = rng.random((count, *grid)) < density
    return np.where(alive, rng.integers(1, states, (count, *grid)), 0).astype(np.uint8)


def render(grid: np.ndarray) -> np.ndarray:
    """A picture of states: (H, W) -> (H, W, 3) uint8 in PALETTE's colours."""
    return PALETTE[grid]
