"""Training by backpropagation through time: the article's three experiments.

- grow: every batch starts from the seed (no pool).
- persist: batches are drawn from a pool of earlier results and written back (sample pool).
- regen: as persist, and the best samples of each batch are wounded with random discs centred
  on living cells.

All randomness (pool draws, rollout lengths, fire masks, damage) comes from one torch.Generator
whose state is saved in the resume state (resume.py), so a resumed run ends where an uninterrupted
one would.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch

from ..engine import NCA, NCAConfig, alive_mask, rgba_loss, seed_state
from ..engine.config import FLOAT
from ..growth.damage import apply_damage, random_body_wounds
from ..growth.seeds import placement_reach
from ..errors import NCAError
from ..runtime.limits import check_memory
from ..targets import GoalSet, Target
from .config import TrainConfig
from .optimise import budget_drop, normalise_gradients
from ..runtime.distributed import SINGLE, World, agree, average_gradients, largest, mean
from .samples import Batch, first_goals, overgrowth, restart, sample_losses, switch_goals


RANK_SEED = 1_000_003  # rank r's generator is seeded seed + r * RANK_SEED


def training_bytes(model: NCAConfig, recipe: TrainConfig, shape: tuple[int, ...]) -> int:
    """Memory (bytes) a training run needs at worst: the pool and a rollout kept for backward."""
    cells = math.prod(shape)
    pool = (recipe.pool_size if recipe.mode != "grow" else 0) * cells * model.channels * FLOAT
    return pool + model.rollout_bytes(cells, recipe.batch, recipe.steps_max)


def check_target(model: NCAConfig, target: Target | GoalSet) -> None:
    """An NCAError unless `target` suits the model: its dims, and a goal set of `goals` targets for
    a conditional model, a single target otherwise."""
    if target.dims != model.dims:
        raise NCAError(f"a {model.dims}D model cannot be trained on a {target.dims}D target")
    if model.goals and (not isinstance(target, GoalSet) or len(target) != model.goals):
        raise NCAError(f"a conditional model of {model.goals} goals trains on a goal set of {model.goals} targets")
    if not model.goals and isinstance(target, GoalSet):
        raise NCAError(f"a goal set of {len(target)} targets needs a conditional model (goals={len(target)})")


class Trainer:
    """Holds the whole training state: model, optimiser, pool, random generator, history."""

    def __init__(self, model_config: NCAConfig, train_config: TrainConfig, target: Target | GoalSet,
                 device: str | torch.device = "cpu", world: World = SINGLE):
        """`target`: a Target, or for a conditional model (model_config.goals) a GoalSet of as many goals.
        `world`: the ranks of a data-parallel run (distributed.py); each holds a shard of the pool
        and trains on its own batch, with gradients averaged over the ranks."""
        self.config = train_config
        self.target = target
        self.device = torch.device(device)
        self.world = world
        check_target(model_config, target)
        if world.active and train_config.mode != "grow" and train_config.pool_size % world.size:
            raise NCAError(f"the pool ({train_config.pool_size}) must divide evenly among {world.size} ranks")
        check_memory(training_bytes(model_config, train_config, target.shape),
                     f"training on a {'x'.join(map(str, target.shape))} grid (batch {train_config.batch}, "
                     f"pool {train_config.pool_size}, rollouts up to {train_config.steps_max} steps)", self.device)
        self._use_target(target)
        # Each rank draws its own batches and fire masks; rank 0 draws what a single process would.
        self.generator = torch.Generator(device=self.device).manual_seed(train_config.seed + RANK_SEED * world.rank)
        torch.manual_seed(train_config.seed)  # the model's initial weights: the same on every rank
        self.model = NCA(model_config).to(self.device)
        # The moving average of the weights is what gets saved: it is steadier than the weights of
        # any one iteration, whose last steps follow a single noisy batch (README, Performance).
        self.averaged = NCA(model_config).to(self.device).requires_grad_(False)
        self.averaged.load_state_dict(self.model.state_dict())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr)
        self.seed = seed_state(model_config, *target.shape, device=self.device)  # (1, *S, C)
        pool = train_config.pool_size // world.size if train_config.mode != "grow" else 0  # this rank's shard
        self.pool = self.seed.expand(pool, *self.seed.shape[1:]).clone()
        self.pool_goals = first_goals(pool, model_config.goals, self.device)  # (pool,) each sample's goal
        self.pool_placed = torch.zeros(pool, dtype=torch.bool, device=self.device)  # grown from several seeds
        self.iteration = 0
        self.elapsed = 0.0  # seconds of training, summed over resumed sessions
        self.losses: list[float] = []
        self.rollbacks = 0
        # The iteration from which the rate is dropped: lr_decay_at, or earlier when a time budget
        # would end the run before it (see run()).
        self.decay_from = train_config.lr_decay_at
        self.reseeded = False  # resumed on another number of ranks, with fresh random streams (resume.py)
        self.started_from: str | None = None  # the model file whose weights the run started from
        self.iterations_before = 0  # ... and the iterations that model had been trained for

    def start_from(self, model: NCA, source: str, iterations_before: int = 0) -> None:
        """Start from `model`'s weights (their average too) instead of fresh ones, trained for
        `iterations_before` iterations; the optimiser and the pool stay fresh. An NCAError unless
        its config is this run's."""
        if model.config != self.model.config:
            raise NCAError(f"{source} is a model of another shape than this run's")
        with torch.no_grad():
            for mine, theirs in ((self.model, model), (self.averaged, model)):
                mine.load_state_dict(theirs.state_dict())
        self.started_from, self.iterations_before = source, iterations_before

    # -- one iteration -------------------------------------------------------------------------

    def sample_batch(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Pick the batch's starting states. Returns (pool indices or None, states (B, *S, C))."""
        batch = self.draw()
        return batch.idx, batch.x

    def draw(self) -> Batch:
        """The batch's starting states with their goals: in grow mode fresh starts; else pool
        samples, the worst restarted, some handed another goal (conditional models), the best of
        the rest wounded (regen)."""
        cfg, g = self.config, self.generator
        if cfg.mode == "grow":
            return self._fresh(None, [self._restart() for _ in range(cfg.batch)])
        idx = torch.randperm(len(self.pool), generator=g, device=self.device)[: cfg.batch]
        order = self.losses_of(self.pool[idx], self.pool_goals[idx], self.pool_placed[idx]).argsort(descending=True)
        idx = idx[order]
        batch = Batch(idx, self.pool[idx], self.pool_goals[idx], self.pool_placed[idx].clone())
        x, goals, placed = batch.x, batch.goals, batch.placed
        x[:1], goals[0], placed[0] = self._restart()  # the worst restarts, so growth is never forgotten
        kept = torch.arange(len(x), device=self.device) > 0
        switched = switch_goals(goals, cfg.switch_rate, len(self.targets), g) & kept
        batch.held = kept & ~placed
        if cfg.mode == "regen" and cfg.damage_count:
            # The best samples are wounded, except those just handed a new goal (already far from it).
            wound = (torch.arange(len(x), device=self.device) >= len(x) - cfg.damage_count) & ~switched
            hurt = x[wound]
            x[wound] = apply_damage(hurt, random_body_wounds(hurt, self.model.config.alive_threshold, generator=g))
            batch.held &= ~wound
        return batch

    def _restart(self) -> tuple[torch.Tensor, int, bool]:
        """A fresh start: (state (1, *S, C), goal, placed); the centre seed unless seed_cells says more."""
        if len(self.targets) == 1 and self.config.seed_cells_max == 1:
            return self.seed, 0, False  # draws nothing: an unconditional run is as it always was
        return restart(self.model.config, self.config, self.targets, self.generator)

    def _fresh(self, idx, starts: list) -> Batch:
        states, goals, placed = zip(*starts)
        return Batch(idx, torch.cat(states), torch.tensor(goals, device=self.device),
                     torch.tensor(placed, device=self.device))

    def losses_of(self, x: torch.Tensor, goals: torch.Tensor, placed: torch.Tensor) -> torch.Tensor:
        """Each sample's loss against its goal's target; placed samples where their body fits best. -> (B,)"""
        return sample_losses(x, self.targets, goals, placed, self.reach)

    def train_step(self) -> float:
        """One iteration: draw a batch, roll it out, learn from it, write it back to the pool."""
        cfg = self.config
        batch = self.draw()
        low, high = cfg.rollout_range(self.iteration)
        steps = int(torch.randint(low, high + 1, (1,), generator=self.generator, device=self.device))
        return self.learn(batch, steps)

    def learn(self, batch: Batch, steps: int, fire=None) -> float:
        """Roll `batch` out for `steps` steps (fire masks from the generator, or fire(k)), and take
        one optimiser step on its loss: gradients averaged over the ranks, each parameter's
        normalised, Adam. Writes the results back to the pool. Returns the batch loss (the mean
        over the ranks), NaN if the step was rolled back."""
        cfg = self.config
        goal = batch.goals if self.model.config.goals else None
        x = self.model.rollout(batch.x, steps, generator=self.generator, goal=goal, fire=fire)
        losses = self.losses_of(x, batch.goals, batch.placed)
        if cfg.overgrowth and batch.held is not None:
            # Only on samples that hold their body: growing from the seed and healing are learnt
            # from the plain loss, which a penalty on the way there would teach to stop short.
            losses = losses + cfg.overgrowth * overgrowth(x, self.targets, batch.goals) * batch.held
        loss = losses.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.model.parameters(), self.world)
        value = mean(float(loss.detach()), self.world)
        if not math.isfinite(value) or not normalise_gradients(self.model):
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
        if batch.idx is not None:
            self._write_back(batch, x.detach())
        return value

    def _write_back(self, batch: Batch, x: torch.Tensor) -> None:
        """The batch's results back into the pool with their goals; samples that died restart as
        the centre seed."""
        dead = self._dead(x)
        self.pool[batch.idx] = self._reset_dead(x)
        self.pool_goals[batch.idx] = batch.goals
        self.pool_placed[batch.idx] = batch.placed & ~dead

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

    def _dead(self, x: torch.Tensor) -> torch.Tensor:
        """Samples of x (B, *S, C) in which every cell died. -> (B,) bool"""
        return ~alive_mask(x, self.model.config.alive_threshold, self.model.config.padding).flatten(1).any(1)

    def _reset_dead(self, x: torch.Tensor) -> torch.Tensor:
        """Samples in which every cell died go back to the seed."""
        dead = self._dead(x)
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
        on, as it would have at `lr_decay_at` of `iterations`, but never before `earliest_drop`
        iterations are done (a slow machine keeps its full rate instead). A machine fast enough
        for every iteration within the budget gets the iteration schedule exactly (and the same
        seed gives the same model); a slower one gets a shorter run with the same shape.

        Returns why it stopped: "done", "time budget" or "interrupted".
        """
        while self.iteration < self.config.iterations:
            # Every rank decides alike (a stop asked for on one stops all; the slowest rank's time counts).
            if agree(should_stop is not None and should_stop(), self.world):
                return "interrupted"
            if time_budget is not None:
                self.elapsed = largest(self.elapsed, self.world)
                if self.elapsed >= time_budget:
                    return "time budget"
                self.decay_from = budget_drop(self.decay_from, self.iteration, self.elapsed, time_budget,
                                              self.config.decay_fraction, self.config.lr_decay_at)
            start = time.perf_counter()
            loss = self.iterate()
            if on_iteration is not None:
                on_iteration(self, loss)
            if checkpoint is not None and checkpoint_every and self.iteration % checkpoint_every == 0:
                checkpoint(self)
            self.elapsed += time.perf_counter() - start  # wall time, checkpoint writes included
        return "done"

    def iterate(self) -> float:
        """One training iteration, counted and recorded (the loop's body; a caller that runs its own
        loop, such as the studio, calls this and adds the time it spends to `elapsed`)."""
        loss = self.train_step()
        self.iteration += 1
        self.losses.append(loss)
        return loss

    # -- changing a run while it goes ----------------------------------------------------------

    def set_target(self, target: Target | GoalSet) -> None:
        """Train towards another target (a conditional model: another goal set of as many goals)
        from the next iteration on. The pool is kept when the grid keeps its shape (its patterns
        then turn into the new picture), else it restarts from seeds."""
        check_target(self.model.config, target)
        if target.shape != self.target.shape:
            check_memory(training_bytes(self.model.config, self.config, target.shape),
                         f"training on a {'x'.join(map(str, target.shape))} grid", self.device)
            self.seed = seed_state(self.model.config, *target.shape, device=self.device)
            self.pool = self.seed.expand(len(self.pool), *self.seed.shape[1:]).clone()
            self.pool_placed.zero_()
        self.target = target
        self._use_target(target)

    def _use_target(self, target: Target | GoalSet) -> None:
        self.target_rgba = target.rgba.to(self.device)  # (*S, 4), or (K, *S, 4) for a goal set
        self.targets = self.target_rgba if isinstance(target, GoalSet) else self.target_rgba[None]  # (K, *S, 4)
        self.reach = placement_reach(target)  # how far a body grown from several seeds may lie

    def reconfigure(self, **changes) -> None:
        """Change the recipe from the next iteration on (e.g. lr, damage_count, steps_min, steps_max,
        batch, mode), checked as a new TrainConfig. The pool's size and the seed cannot change."""
        fixed = {"pool_size", "seed"} & set(changes)
        if fixed:
            raise NCAError(f"{', '.join(sorted(fixed))} cannot change during a run")
        config = TrainConfig.from_dict({**self.config.to_dict(), **changes})
        if config.mode != "grow" and len(self.pool) < config.pool_size:
            self.pool = self.seed.expand(config.pool_size, *self.seed.shape[1:]).clone()
            self.pool_goals = first_goals(config.pool_size, self.model.config.goals, self.device)
            self.pool_placed = torch.zeros(config.pool_size, dtype=torch.bool, device=self.device)
        if "lr_decay_at" in changes:  # a new drop replaces the old one (or one a time budget brought forward)
            self.decay_from = config.lr_decay_at
        self.config = config

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
        return {**self.config.to_dict(), "iterations_done": self.iteration, "world_size": self.world.size,
                "effective_batch": self.config.batch * self.world.size,
                "wall_time_s": round(self.elapsed, 1), "final_loss": self.final_loss(),
                "stopped": stopped, "rollbacks": self.rollbacks,
                "lr_dropped_at": self.decay_from if self.decay_from < self.iteration else None,
                **({"started_from": self.started_from, "iterations_before": self.iterations_before}
                   if self.started_from else {})}
