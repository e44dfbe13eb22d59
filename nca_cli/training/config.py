"""The training recipe: one dataclass, stored in the model file and the resume state."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import InvalidOption, NCAError
from .optimise import earliest_drop

MODES = ("grow", "persist", "regen")
# Upper bounds far beyond real runs (the default is 3000 iterations of batch 4, pool 256, 96 steps).
MAX_ITERATIONS, MAX_BATCH, MAX_POOL, MAX_ROLLOUT = 10_000_000, 4096, 1_000_000, 10_000
MAX_SEED_CELLS = 16
MIN_CURRICULUM_STEPS = 8  # the shortest rollout a curriculum starts from
# A time budget may bring the rate drop forward, but to no earlier than this share of lr_decay_at
# (735 of the default 2450): the fewest full-rate iterations measured to give a good model were
# 730 (docs/training-recipe.md). A slow machine keeps its full rate rather than dropping it while
# the rule has learnt nothing yet.
# The defaults for several targets (one conditional rule): twice the single target's run and time
# budget, the rate dropping at the same 82% of it (docs/goals.md).
GOALS_RECIPE = {"iterations": 6000, "lr_decay_at": 4900, "time_budget": "20m"}


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; stored in the model file and the resume checkpoint."""

    mode: str = "regen"
    iterations: int = 3000
    batch: int = 4  # the article uses 8; 4 reached lower losses in the same wall time (README)
    pool_size: int = 256  # the article's 1024 turns over too slowly for a short run (README)
    steps_min: int = 64  # rollout length is drawn uniformly from [steps_min, steps_max]
    steps_max: int = 96
    lr: float = 2e-3
    lr_decay_at: int = 2450  # iteration at which the learning rate is multiplied by lr_decay
    lr_decay: float = 0.1
    damage_count: int = 3  # regen: how many of the best samples are wounded per batch
    average: float = 0.99  # decay of the moving average of the weights that is saved (0: last weights)
    seed: int = 0
    # Conditional models: the chance that a drawn pool sample is handed another goal (docs/goals.md).
    switch_rate: float = 0.2
    # Seed cells a restarting sample starts from, drawn from this range: 1 is the one in the centre,
    # more are placed at random solid cells of the target (docs/goals.md).
    seed_cells_min: int = 1
    seed_cells_max: int = 1
    # A curriculum: over the first `short_first` iterations rollouts grow from a quarter of their
    # length to all of it (early patterns are small and learn to grow from short rollouts, which
    # cost little); and the rate rises linearly over the first `lr_warmup` iterations.
    short_first: int = 0
    lr_warmup: int = 0
    # A penalty on alpha where the target is empty, this many times the overgrowth (samples.py),
    # added to the loss of the pool samples that hold their body: not the one restarted from the
    # seed, nor wounded or placed ones, so that learning to grow and to heal is never traded for a
    # tighter outline (docs/3d.md). Pool modes only.
    overgrowth: float = 0.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise NCAError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("iterations", "batch"):
            if getattr(self, name) < 1:
                raise InvalidOption(name, f"must be at least 1, got {getattr(self, name)}")
        for name, value, most in (("iterations", self.iterations, MAX_ITERATIONS), ("batch", self.batch, MAX_BATCH),
                                  ("pool_size", self.pool_size, MAX_POOL), ("steps_max", self.steps_max, MAX_ROLLOUT)):
            if value > most:
                raise InvalidOption(name, f"must be at most {most:,}, got {value:,}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (math.isfinite(self.lr_decay) and 0 < self.lr_decay <= 1):
            raise NCAError(f"the learning rate must be a positive number and its decay in (0, 1], got "
                           f"{self.lr:g} and {self.lr_decay:g}")
        if self.lr_decay_at < 0:
            raise InvalidOption("lr_decay_at", f"must not be negative, got {self.lr_decay_at}")
        if self.mode != "grow" and self.pool_size < self.batch:
            raise NCAError(f"pool size ({self.pool_size}) must be at least the batch ({self.batch})")
        if self.steps_min < 1:
            raise InvalidOption("steps_min", f"must be at least 1, got {self.steps_min}")
        if self.steps_min > self.steps_max:
            raise InvalidOption("steps_max", f"must be at least the shortest rollout ({self.steps_min} steps), got {self.steps_max}")
        if self.mode == "regen" and not 0 <= self.damage_count < self.batch:
            raise InvalidOption("damage_count", f"must be from 0 to the batch size less one ({self.batch - 1}), "
                                                f"got {self.damage_count}")
        if not 0.0 <= self.average < 1.0:  # NaN fails this too
            raise NCAError(f"weight average decay must be in [0, 1), got {self.average}")
        if not 0.0 <= self.switch_rate <= 1.0:
            raise InvalidOption("switch_rate", f"must be between 0 and 1, got {self.switch_rate}")
        if not (math.isfinite(self.overgrowth) and self.overgrowth >= 0):
            raise InvalidOption("overgrowth", f"must be a number of at least 0, got {self.overgrowth:g}")
        if self.short_first < 0 or self.lr_warmup < 0:
            raise NCAError("the curriculum's lengths (short_first, lr_warmup) must not be negative")
        if not 1 <= self.seed_cells_min <= self.seed_cells_max <= MAX_SEED_CELLS:
            raise InvalidOption("seed_cells", f"must be from 1 to {MAX_SEED_CELLS} cells, got "
                                f"{self.seed_cells_min}-{self.seed_cells_max}")

    def rollout_range(self, iteration: int) -> tuple[int, int]:
        """The range rollout lengths are drawn from at `iteration` (the curriculum's, early on)."""
        if iteration >= self.short_first:
            return self.steps_min, self.steps_max
        share = 0.25 + 0.75 * iteration / self.short_first
        low = max(MIN_CURRICULUM_STEPS, round(self.steps_min * share))
        return low, max(low, round(self.steps_max * share))

    @property
    def seed_cells(self) -> str:
        """The seed-cell range as written on the command line: '1', '1-3'."""
        low, high = self.seed_cells_min, self.seed_cells_max
        return str(low) if low == high else f"{low}-{high}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        if not isinstance(data, dict):
            raise NCAError(f"a training config is a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def learning_rate(self, iteration: int, decay_from: int | None = None) -> float:
        """The rate at `iteration`: dropped from `lr_decay_at` on, or from `decay_from` if earlier."""
        start = self.lr_decay_at if decay_from is None else min(decay_from, self.lr_decay_at)
        warm = min(1.0, (iteration + 1) / self.lr_warmup) if self.lr_warmup else 1.0
        return self.lr * warm * (self.lr_decay if iteration >= start else 1.0)

    @property
    def earliest_drop(self) -> int:
        """The earliest iteration a time budget may bring the rate drop forward to."""
        return earliest_drop(self.lr_decay_at)

    @property
    def decay_fraction(self) -> float:
        """How far through the run the rate drops: a run cut short by a time budget drops it after
        this fraction of the budget, so that it still ends with its low-rate phase."""
        return min(self.lr_decay_at / self.iterations, 1.0)

    def average_decay(self, updates: int) -> float:
        """Decay of the weight average after `updates` optimiser steps: `average`, but lower
        early on so that a short run's average is not dominated by the initial weights."""
        return min(self.average, (1 + updates) / (10 + updates))
