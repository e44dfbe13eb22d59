"""What a rule is learned from: runs of integer states, and the transitions seen in them.

Runs are (N, T, H, W) uint8: N runs of T states each, one step apart. Every cell of every state but
the last is one transition, from its neighbourhood (a configuration code) to its next state; the
observations are the distinct configurations seen, each with its next state and how often it
occurred. A deterministic rule on the Moore neighbourhood sends a configuration to one state only.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NCAError
from ..formats.states import read_npy
from ..runtime.limits import check_memory
from .neighbourhoods import MAX_STATES, encode, neighbourhoods
from .notation import Rule
from .simulate import random_soups, trajectories


BYTES_PER_TRANSITION = 64  # its neighbourhood, code, sort order and sorted copies


@dataclass
class Observations:
    runs: np.ndarray  # (N, T, H, W) uint8
    states: int
    padding: str
    codes: np.ndarray  # (M,) int64 sorted distinct configurations seen
    next: np.ndarray  # (M,) uint8 their next states
    counts: np.ndarray  # (M,) int64 how often each was seen

    @property
    def transitions(self) -> int:
        return int(self.counts.sum())


def observe(runs: np.ndarray, states: int, padding: str) -> Observations:
    """The distinct transitions of runs (N, T, H, W). Raises NCAError where one configuration goes
    to two different states (the data are not a rule on the Moore neighbourhood with these edges)."""
    if runs.shape[1] < 2:
        raise NCAError(f"runs need at least 2 states each to show a transition, got {runs.shape[1]}")
    N, T, H, W = runs.shape
    check_memory(BYTES_PER_TRANSITION * N * (T - 1) * H * W, f"sorting {N * (T - 1) * H * W:,} transitions")
    codes = encode(neighbourhoods(runs[:, :-1].reshape(-1, H, W), padding), states).ravel()
    after = runs[:, 1:].reshape(-1)
    order = np.lexsort((after, codes))
    codes, after = codes[order], after[order]
    pair_start = np.r_[True, (codes[1:] != codes[:-1]) | (after[1:] != after[:-1])]
    pair_codes, pair_next = codes[pair_start], after[pair_start]
    pair_counts = np.diff(np.r_[np.flatnonzero(pair_start), len(codes)])
    clash = np.flatnonzero(pair_codes[1:] == pair_codes[:-1])
    if len(clash):
        i = clash[0]
        raise NCAError(f"the runs are not one rule on the Moore neighbourhood with {padding} edges: configuration "
                       f"{int(pair_codes[i])} becomes {int(pair_next[i])} {int(pair_counts[i])} times and "
                       f"{int(pair_next[i + 1])} {int(pair_counts[i + 1])} times "
                       f"({len(clash)} configurations go to more than one state)")
    return Observations(runs, states, padding, pair_codes, pair_next.astype(np.uint8), pair_counts)


def simulated_runs(rule: Rule, count: int, shape: tuple[int, int], steps: int, padding: str,
                   seed: int) -> np.ndarray:
    """Runs of a hand-written rule from random soups of varied mixes. -> (count, steps+1, H, W)"""
    check_memory((steps + 1) * count * shape[0] * shape[1] * (1 + BYTES_PER_TRANSITION),
                 f"simulating {count} soups of {shape[0]}x{shape[1]} for {steps} steps")
    soups = random_soups(rule.states, count, shape, np.random.default_rng(seed))
    return trajectories(rule, soups, steps, padding)


def load_runs(path: str | Path, states: int | None = None) -> tuple[np.ndarray, int]:
    """Observed runs from an .npy file of integer states, (T, H, W) or (N, T, H, W); the number of
    states is `states`, or one more than the highest state seen. -> runs (N, T, H, W) uint8, states"""
    data = read_npy(path, "runs")
    if not (np.issubdtype(data.dtype, np.integer) or data.dtype == np.bool_):
        raise NCAError(f"{path} holds {data.dtype} values; runs are integer states, (T, H, W) or (N, T, H, W)")
    if data.ndim not in (3, 4) or min(data.shape) < 1:
        raise NCAError(f"{path} holds an array of shape {data.shape}; runs are (T, H, W) or (N, T, H, W)")
    low, high = int(data.min()), int(data.max())
    if low < 0:
        raise NCAError(f"{path} holds the state {low}; states are 0 or more")
    wanted = states if states is not None else max(high + 1, 2)
    if high >= wanted:
        raise NCAError(f"{path} holds states up to {high}, more than the {wanted} states (0..{wanted - 1}) of the rule")
    if wanted > MAX_STATES:
        raise NCAError(f"{path} holds {wanted} states; a rule has 2 to {MAX_STATES}")
    runs = data.astype(np.uint8)
    return (runs[None] if runs.ndim == 3 else runs), wanted


def pack_codes(codes: np.ndarray) -> str:
    """Sorted configuration codes as text for a model file: their gaps, as uint32, zlib, base64."""
    gaps = np.diff(np.r_[0, np.asarray(codes, dtype=np.int64)]).astype("<u4")
    return base64.b64encode(zlib.compress(gaps.tobytes(), 9)).decode("ascii")


def unpack_codes(text: str) -> np.ndarray:
    """pack_codes undone. -> (M,) int64"""
    try:
        gaps = np.frombuffer(zlib.decompress(base64.b64decode(text, validate=True)), dtype="<u4")
    except (ValueError, zlib.error) as exc:
        raise NCAError(f"the stored configurations are damaged: {exc}") from None
    return np.cumsum(gaps.astype(np.int64))
