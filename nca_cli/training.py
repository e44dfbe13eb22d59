"""Training by backpropagation through time: the article's three experiments.

- grow: every batch starts from the seed (no pool).
- persist: batches are drawn from a pool of earlier results and written back (sample pool).
- regen: as persist, and the best samples of each batch are wounded with random discs centred
  on living cells.

All randomness (pool draws, rollout lengths, fire masks, damage) comes from one torch.Generator
whose state is saved in the resume checkpoint, so a resumed run ends where an uninterrupted one
would.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file

from . import __version__
from .atomic import atomic_output
from .checkpoint import read_safetensors
from .damage import apply_damage, random_body_wounds
from .engine import NCA, NCAConfig, alive_mask, rgba_loss, seed_state
from .errors import NCAError
from .targets import Target

MODES = ("grow", "persist", "regen")
RESUME_FORMAT = "nca-train-state"


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

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.iterations < 1 or self.batch < 1:
            raise ValueError("iterations and batch must be positive")
        if self.mode != "grow" and self.pool_size < self.batch:
            raise ValueError(f"pool size ({self.pool_size}) must be at least the batch ({self.batch})")
        if not 1 <= self.steps_min <= self.steps_max:
            raise ValueError(f"need 1 <= steps_min <= steps_max, got {self.steps_min}..{self.steps_max}")
        if self.mode == "regen" and not 0 <= self.damage_count < self.batch:
            raise ValueError(f"damage count must be below the batch size ({self.batch})")
        if not 0.0 <= self.average < 1.0:
            raise ValueError(f"weight average decay must be in [0, 1), got {self.average}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def learning_rate(self, iteration: int, decay_from: int | None = None) -> float:
        """The rate at `iteration`: dropped from `lr_decay_at` on, or from `decay_from` if earlier."""
        start = self.lr_decay_at if decay_from is None else min(decay_from, self.lr_decay_at)
        return self.lr * (self.lr_decay if iteration >= start else 1.0)

    @property
    def decay_fraction(self) -> float:
        """How far through the run the rate drops: a run cut short by a time budget drops it after
        this fraction of the budget, so that it still ends with its low-rate phase."""
        return min(self.lr_decay_at / self.iterations, 1.0)

    def average_decay(self, updates: int) -> float:
        """Decay of the weight average after `updates` optimiser steps: `average`, but lower
        early on so that a short run's average is not dominated by the initial weights."""
        return min(self.average, (1 + updates) / (10 + updates))


class Trainer:
    """Holds the whole training state: model, optimiser, pool, random generator, history."""

    def __init__(self, model_config: NCAConfig, train_config: TrainConfig, target: Target,
                 device: str | torch.device = "cpu"):
        self.config = train_config
        self.target = target
        self.device = torch.device(device)
        self.target_rgba = target.rgba.to(self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(train_config.seed)
        torch.manual_seed(train_config.seed)  # the model's initial weights
        self.model = NCA(model_config).to(self.device)
        # The moving average of the weights is what gets saved: it is steadier than the weights of
        # any one iteration, whose last steps follow a single noisy batch (README, Performance).
        self.averaged = NCA(model_config).to(self.device).requires_grad_(False)
        self.averaged.load_state_dict(self.model.state_dict())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr)
        H, W = target.shape
        self.seed = seed_state(model_config, H, W, device=self.device)  # (1, H, W, C)
        pool = train_config.pool_size if train_config.mode != "grow" else 0
        self.pool = self.seed.repeat(pool, 1, 1, 1)
        self.iteration = 0
        self.elapsed = 0.0  # seconds of training, summed over resumed sessions
        self.losses: list[float] = []
        self.rollbacks = 0
        # The iteration from which the rate is dropped: lr_decay_at, or earlier when a time budget
        # would end the run before it (see run()).
        self.decay_from = train_config.lr_decay_at

    # -- one iteration -------------------------------------------------------------------------

    def sample_batch(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Pick the batch's starting states. Returns (pool indices or None, states (B, H, W, C))."""
        cfg, g = self.config, self.generator
        if cfg.mode == "grow":
            return None, self.seed.repeat(cfg.batch, 1, 1, 1)
        idx = torch.randperm(cfg.pool_size, generator=g, device=self.device)[: cfg.batch]
        x = self.pool[idx]
        order = rgba_loss(x, self.target_rgba).argsort(descending=True)
        idx, x = idx[order], x[order].clone()
        x[:1] = self.seed  # the worst sample restarts from the seed, so growth is never forgotten
        if cfg.mode == "regen" and cfg.damage_count:
            wounded = x[-cfg.damage_count:]
            x[-cfg.damage_count:] = apply_damage(wounded, random_body_wounds(wounded, generator=g))
        return idx, x

    def train_step(self) -> float:
        """One iteration: rollout, loss, normalised gradients, Adam step, pool write-back."""
        cfg = self.config
        idx, x = self.sample_batch()
        steps = int(torch.randint(cfg.steps_min, cfg.steps_max + 1, (1,), generator=self.generator,
                                  device=self.device))
        x = self.model.rollout(x, steps, generator=self.generator)
        loss = rgba_loss(x, self.target_rgba).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = float(loss.detach())
        if not math.isfinite(value) or not self._normalise_gradients():
            self.rollbacks += 1  # skip the update: the weights stay at the last good state
            return value
        snapshot = self._snapshot()
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate(self.iteration, self.decay_from)
        self.optimizer.step()
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            self._restore(snapshot)
            self.rollbacks += 1
            return float("nan")
        self._update_average()
        if idx is not None:
            self.pool[idx] = self._reset_dead(x.detach())
        return value

    @property
    def updates(self) -> int:
        """Optimiser steps taken: every finished iteration that was not skipped or rolled back."""
        return self.iteration - self.rollbacks

    @torch.no_grad()
    def _update_average(self) -> None:
        decay = self.config.average_decay(self.updates + 1)  # this iteration's step is the next one
        for avg, p in zip(self.averaged.parameters(), self.model.parameters()):
            avg.lerp_(p, 1.0 - decay)

    @property
    def result(self) -> NCA:
        """The model to save and use: the weight average, or the last weights when averaging is off."""
        return self.averaged if self.config.average else self.model

    def _normalise_gradients(self) -> bool:
        """Scale each parameter's gradient to unit norm (the article's recipe). False if not finite."""
        for p in self.model.parameters():
            if p.grad is None:
                continue
            if not torch.isfinite(p.grad).all():
                return False
            p.grad /= p.grad.norm() + 1e-8
        return True

    def _reset_dead(self, x: torch.Tensor) -> torch.Tensor:
        """Samples in which every cell died go back to the seed."""
        dead = ~alive_mask(x, self.model.config.alive_threshold, self.model.config.padding).flatten(1).any(1)
        if dead.any():
            x = x.clone()
            x[dead] = self.seed
        return x

    def _snapshot(self) -> tuple[dict, dict]:
        """Copies of the weights and optimiser moments (a few tens of KB) to roll back to."""
        model = {k: v.clone() for k, v in self.model.state_dict().items()}
        optim = {p: {k: v.clone() for k, v in s.items()} for p, s in self.optimizer.state.items()}
        return model, optim

    def _restore(self, snapshot: tuple[dict, dict]) -> None:
        model, optim = snapshot
        self.model.load_state_dict(model)
        self.optimizer.state.clear()
        self.optimizer.state.update(optim)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, time_budget: float | None = None,
            on_iteration: Callable[["Trainer", float], None] | None = None,
            should_stop: Callable[[], bool] | None = None,
            checkpoint: Callable[["Trainer"], None] | None = None,
            checkpoint_every: int = 0) -> str:
        """Train until the configured iterations, the time budget (seconds), or should_stop().

        The schedule follows whichever of the two ends the run first: once the time spent passes
        the schedule's drop fraction of the budget, the learning rate drops from that iteration
        on, as it would have at `lr_decay_at` of `iterations`. A machine fast enough for every
        iteration within the budget gets the iteration schedule exactly (and the same seed gives
        the same model); a slower one gets a shorter run with the same shape.

        Returns why it stopped: "done", "time budget" or "interrupted".
        """
        while self.iteration < self.config.iterations:
            if should_stop is not None and should_stop():
                return "interrupted"
            if time_budget is not None:
                if self.elapsed >= time_budget:
                    return "time budget"
                if self.elapsed >= self.config.decay_fraction * time_budget:
                    self.decay_from = min(self.decay_from, self.iteration)
            start = time.perf_counter()
            loss = self.train_step()
            self.iteration += 1
            self.losses.append(loss)
            if on_iteration is not None:
                on_iteration(self, loss)
            if checkpoint is not None and checkpoint_every and self.iteration % checkpoint_every == 0:
                checkpoint(self)
            self.elapsed += time.perf_counter() - start  # wall time, checkpoint writes included
        return "done"

    def expected_iterations(self, time_budget: float | None) -> int:
        """Where the run will end: at `iterations`, or earlier where the time budget runs out first
        at the pace so far (for a progress bar)."""
        if time_budget is None or self.iteration == 0 or self.elapsed <= 0:
            return self.config.iterations
        left = max(time_budget - self.elapsed, 0.0)
        return min(self.config.iterations, self.iteration + math.ceil(left * self.iteration / self.elapsed))

    def final_loss(self, window: int = 20) -> float:
        """Mean of the last `window` finite batch losses (one batch is noisy)."""
        finite = [v for v in self.losses[-window:] if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else float("nan")

    def summary(self, stopped: str) -> dict:
        return {**self.config.to_dict(), "iterations_done": self.iteration,
                "wall_time_s": round(self.elapsed, 1), "final_loss": self.final_loss(),
                "stopped": stopped, "rollbacks": self.rollbacks,
                "lr_dropped_at": self.decay_from if self.decay_from < self.iteration else None}

    # -- resume checkpoints --------------------------------------------------------------------

    def save_state(self, path: str | Path) -> None:
        """Write everything needed to continue this run, atomically."""
        tensors = {**_prefixed("model.", self.model), **_prefixed("averaged.", self.averaged)}
        for i, p in enumerate(self.model.parameters()):
            for key, value in self.optimizer.state.get(p, {}).items():
                tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        tensors["pool"] = self.pool.cpu().contiguous()
        tensors["rng"] = self.generator.get_state().cpu()
        tensors["target"] = self.target.rgba.cpu().contiguous()
        tensors["losses"] = torch.tensor(self.losses, dtype=torch.float64)
        meta = {"format": RESUME_FORMAT, "nca_version": __version__,
                "model": json.dumps(self.model.config.to_dict()),
                "training": json.dumps(self.config.to_dict()),
                "target": json.dumps({"name": self.target.name, "size": self.target.size,
                                      "pad": self.target.pad, "sha256": self.target.sha256}),
                "progress": json.dumps({"iteration": self.iteration, "elapsed": self.elapsed,
                                        "rollbacks": self.rollbacks, "decay_from": self.decay_from})}
        with atomic_output(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    @classmethod
    def load_state(cls, path: str | Path, target: Target, device: str | torch.device = "cpu",
                   iterations: int | None = None) -> "Trainer":
        """Rebuild a Trainer from a resume checkpoint; `target` must be the one it was trained on."""
        tensors, meta = read_safetensors(path)
        if meta.get("format") != RESUME_FORMAT:
            raise NCAError(f"{path} is not an nca training checkpoint")
        try:
            model_config = NCAConfig.from_dict(json.loads(meta["model"]))
            train_config = TrainConfig.from_dict(json.loads(meta["training"]))
            stored_target = json.loads(meta["target"])
            progress = json.loads(meta["progress"])
        except (KeyError, ValueError, TypeError) as exc:
            raise NCAError(f"{path} has invalid metadata: {exc}") from exc
        if stored_target.get("sha256") != target.sha256:
            raise NCAError(f"{path} was trained on another target ({stored_target.get('name')}, "
                           f"size {stored_target.get('size')}, pad {stored_target.get('pad')})")
        if iterations is not None:
            train_config = TrainConfig.from_dict({**train_config.to_dict(), "iterations": iterations})
        trainer = cls(model_config, train_config, target, device)
        try:
            trainer.model.load_state_dict(_unprefixed("model.", tensors))
            # Checkpoints from before weight averaging carry none: the average starts from the weights.
            trainer.averaged.load_state_dict(_unprefixed("averaged.", tensors) or trainer.model.state_dict())
            params = list(trainer.model.parameters())
            for name, value in tensors.items():
                if name.startswith("optim."):
                    _, i, key = name.split(".", 2)
                    trainer.optimizer.state[params[int(i)]][key] = value.to(trainer.device)
            trainer.pool = tensors["pool"].to(trainer.device)
            trainer.generator.set_state(tensors["rng"])
        except (KeyError, RuntimeError, ValueError, IndexError) as exc:
            raise NCAError(f"{path} is damaged or from an incompatible version: {exc}") from exc
        trainer.losses = tensors["losses"].tolist()
        trainer.iteration = int(progress["iteration"])
        trainer.elapsed = float(progress["elapsed"])
        trainer.rollbacks = int(progress.get("rollbacks", 0))
        trainer.decay_from = int(progress.get("decay_from", train_config.lr_decay_at))
        return trainer


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state as CPU tensors named prefix + key, for one file holding several modules."""
    return {prefix + k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors named prefix + key, keyed by key: the inverse of _prefixed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
