"""Moore neighbourhoods of integer-state grids, as rows of nine states and as integer codes.

A neighbourhood is the 3x3 block around a cell, row-major: NW, N, NE, W, C (the cell), E, SW, S,
SE. Its code is the nine states read as a base-`states` number, NW the most significant digit (the
order of Golly's MAP rules for two states), so codes run from 0 to states**9 - 1. Grids are
(B, H, W) uint8 arrays; edges are "wrap" (a torus) or "zero" (a bounded grid: outside is state 0).
"""

from __future__ import annotations

import numpy as np

from ..errors import NCAError

POSITIONS = ("NW", "N", "NE", "W", "C", "E", "SW", "S", "SE")
CENTRE = 4
NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)  # every position but the centre
MAX_STATES = 8
# Every configuration is evaluated where there are at most this many (four states: 4**9).
ENUMERABLE = 4 ** 9


def check_states(states: int) -> int:
    """The number of states of a rule: 2 to MAX_STATES."""
    if not 2 <= states <= MAX_STATES:
        raise NCAError(f"a rule has 2 to {MAX_STATES} states, got {states}")
    return states


def neighbourhoods(grid: np.ndarray, padding: str) -> np.ndarray:
    """Each cell's neighbourhood: (B, H, W) -> (B, H, W, 9), in POSITIONS order."""
    B, H, W = grid.shape
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)), mode="wrap" if padding == "wrap" else "constant")
    return np.stack([padded[:, dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)], axis=-1)


def place_values(states: int) -> np.ndarray:
    """The weight of each position in a code: states**8 (NW) down to 1 (SE). (9,) int64"""
    return states ** np.arange(8, -1, -1, dtype=np.int64)


def encode(hoods: np.ndarray, states: int) -> np.ndarray:
    """Codes of neighbourhoods: (..., 9) -> (...) int64."""
    return hoods.astype(np.int64) @ place_values(states)


def decode(codes: np.ndarray, states: int) -> np.ndarray:
    """Neighbourhoods of codes: (M,) -> (M, 9) uint8."""
    return ((np.asarray(codes, dtype=np.int64)[:, None] // place_values(states)) % states).astype(np.uint8)


def all_codes(states: int) -> np.ndarray:
    """Every configuration's code, where there are at most ENUMERABLE. (states**9,) int64"""
    if states ** 9 > ENUMERABLE:
        raise NCAError(f"{states} states have {states ** 9} neighbourhood configurations, too many to list")
    return np.arange(states ** 9, dtype=np.int64)


def _square_symmetries() -> np.ndarray:
    """The 8 rotations and reflections of the 3x3 block as permutations of its positions. (8, 9)"""
    square = np.arange(9).reshape(3, 3)
    images = []
    for flipped in (square, square.T):
        for turns in range(4):
            images.append(np.rot90(flipped, turns).reshape(9))
    return np.array(images)


SQUARE_SYMMETRIES = _square_symmetries()


def square_images(hoods: np.ndarray) -> np.ndarray:
    """A neighbourhood turned and mirrored every way: (M, 9) -> (8, M, 9)."""
    return hoods[:, SQUARE_SYMMETRIES].transpose(1, 0, 2)


def canonical(hoods: np.ndarray, states: int, symmetry: str) -> np.ndarray:
    """A code shared by every neighbourhood equivalent under `symmetry`: "none", "rotate4reflect"
    (the square's rotations and reflections) or "permute" (neighbours in any order). (M, 9) -> (M,)"""
    if symmetry == "none":
        return encode(hoods, states)
    if symmetry == "rotate4reflect":
        return encode(square_images(hoods), states).min(axis=0)
    if symmetry == "permute":
        ordered = np.concatenate([hoods[:, [CENTRE]], np.sort(hoods[:, NEIGHBOURS], axis=1)], axis=1)
        return encode(ordered, states)
    raise ValueError(f"unknown symmetry {symmetry!r}")


def with_square_images(codes: np.ndarray, states: int) -> np.ndarray:
    """Codes together with those of their rotations and reflections, sorted and unique. (M,) -> (M',)"""
    return np.unique(encode(square_images(decode(codes, states)), states))
