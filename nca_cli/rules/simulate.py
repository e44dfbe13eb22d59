"""The hand-written rules run on integer grids: the data a rule is learned from, and the reference.

Grids are (B, H, W) uint8 arrays of states; edges "wrap" (a torus) or "zero" (a bounded grid whose
outside is state 0, as Golly's bounded planes). Every cell updates at once.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InvalidOption
from .neighbourhoods import neighbourhoods
from .notation import Rule

PADDINGS = ("wrap", "zero")


def check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise InvalidOption("padding", f"must be wrap (a torus) or zero (a bounded grid), got {padding!r}")
    return padding


def step(rule: Rule, grid: np.ndarray, padding: str) -> np.ndarray:
    """One synchronous step: (B, H, W) uint8 -> (B, H, W) uint8."""
    hoods = neighbourhoods(grid, padding)
    return rule.next_state(hoods.reshape(-1, 9)).reshape(grid.shape)


def run(rule: Rule, grid: np.ndarray, steps: int, padding: str,
        on_step: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """`steps` steps from (B, H, W); on_step(k, grid) sees the grid after k steps, k = 0..steps."""
    for k in range(steps + 1):
        if on_step is not None:
            on_step(k, grid)
        if k < steps:
            grid = step(rule, grid, padding)
    return grid


def trajectories(rule: Rule, grids: np.ndarray, steps: int, padding: str) -> np.ndarray:
    """Every state of runs from (B, H, W): -> (B, steps + 1, H, W) uint8."""
    frames: list[np.ndarray] = []
    run(rule, grids, steps, padding, on_step=lambda k, g: frames.append(g))
    return np.stack(frames, axis=1)


def random_soups(states: int, count: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Random grids, each with its own mix of states (drawn uniformly from all mixes), so that sparse
    and dense neighbourhoods all occur. -> (count, H, W) uint8"""
    mixes = rng.dirichlet(np.ones(states), size=count)  # (count, states)
    cumulative = mixes.cumsum(axis=1)[:, None, None, :]
    draws = rng.random((count, *shape, 1))
    return np.minimum((draws > cumulative).sum(axis=-1), states - 1).astype(np.uint8)
