"""What a studio session publishes for its pages: figures, pictures and messages."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch

POOL_SHOWN = 4  # pool samples shown on the page


@dataclass
class Notice:
    """A message for every page: `level` is "info" or "error"; `file` names a saved file."""

    seq: int
    level: str
    text: str
    file: str | None = None


@dataclass
class Snapshot:
    """What the pages show, as published after one pass of the worker."""

    run: int  # changes when a model file replaces the run (the loss history starts again)
    figures: dict
    live: np.ndarray  # (H, W, 4) uint8, straight alpha
    target: np.ndarray
    target_version: int
    pool: list[np.ndarray] = field(default_factory=list)
    pool_version: int = 0


def pool_choice(pool: torch.Tensor, threshold: float, rng: random.Random, count: int = POOL_SHOWN) -> list[int]:
    """`count` samples of the pool (N, H, W, C) at random, those that have grown first (a fresh pool
    is all seeds). Returns their indices."""
    living = (pool[..., 3] > threshold).flatten(1).sum(1)  # (N,)
    grown = (living > 1).nonzero().flatten().tolist()
    seeds = (living <= 1).nonzero().flatten().tolist()
    chosen = rng.sample(grown, min(count, len(grown)))
    return chosen + rng.sample(seeds, min(count - len(chosen), len(seeds)))
