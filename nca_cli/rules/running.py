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
from ..runtime.limits import check_memory, check_steps
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


# Working memory of one step per cell: the learned rule's gathered neighbourhoods, perception and
# hidden layer in float32 (generously), or the simulator's neighbourhoods and codes.
LEARNED_BYTES_PER_CELL, SIMULATED_BYTES_PER_CELL = 2048, 160


def check_run(source: Source, cells: int, steps: int, kept_frames: int) -> None:
    """Refuse a run whose steps or memory (a step's work plus the grids kept) are too large."""
    check_steps(steps)
    per_cell = LEARNED_BYTES_PER_CELL if isinstance(source, NCA) else SIMULATED_BYTES_PER_CELL
    device = next(source.parameters()).device if isinstance(source, NCA) else "cpu"
    check_memory(cells * per_cell, f"a step of {cells:,} cells", device)
    check_memory(cells * (kept_frames + 1), f"keeping {kept_frames:,} states of {cells:,} cells")


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


def first_difference(a: Source, b: Source, grids: np.ndarray, steps: int, padding: str,
                     on_step: Callable[[int, np.ndarray], None] | None = None) -> tuple[tuple[int, int] | None, np.ndarray]:
    """Run both rules side by side (on_step sees `a`'s grids): the first step whose grids differ and
    how many cells differ there (None if they agree at every step), and `a`'s last grid."""
    frames: list[np.ndarray] = []
    run(b, grids, steps, padding, on_step=lambda k, g: frames.append(g))
    found: list[tuple[int, int]] = []

    def compare(k: int, grid: np.ndarray) -> None:
        if not found and not np.array_equal(grid, frames[k]):
            found.append((k, int((grid != frames[k]).sum())))
        if on_step is not None:
            on_step(k, grid)

    last = run(a, grids, steps, padding, on_step=compare)
    return (found[0] if found else None), last


def place(pattern: Pattern, grid: tuple[int, int]) -> np.ndarray:
    """A pattern on an empty grid (H, W): where its #CXRLE position puts it on a bounded grid of
    that size, else centred. -> (H, W) uint8"""
    H, W = grid
    h, w = pattern.cells.shape
    check_memory(H * W, f"a grid of {H}x{W} cells")
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
    check_memory(count * grid[0] * grid[1] * 18, f"{count} soups of {grid[0]}x{grid[1]} cells")  # the draws
    rng = np.random.default_rng(seed)
    alive = rng.random((count, *grid)) < density
    return np.where(alive, rng.integers(1, states, (count, *grid)), 0).astype(np.uint8)


def render(grid: np.ndarray) -> np.ndarray:
    """A picture of states: (H, W) -> (H, W, 3) uint8 in PALETTE's colours."""
    return PALETTE[grid]
