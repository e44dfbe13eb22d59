"""What a studio session publishes for its pages: figures, pictures and messages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
