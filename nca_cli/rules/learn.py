"""Learning a rule: an NCA trained on observed transitions, then on multi-step rollouts.

Each attempt trains a fresh model in two stages. Transitions: batches of distinct observed
configurations, each a 3x3 tile whose centre the engine steps: all of them where they fit in a
batch, else those the model still gets wrong or wins by less than `margin` (each once, up to half
the batch) and the rest drawn evenly from all, so that a configuration seen once weighs as much as
one seen a million times; cross-entropy on the next state. Rollouts: once every observed
configuration is right, the next `rollout_iterations` steps add a loss on `rollout_length`-step
runs of windows of the recorded grids, the model fed its own rounded (one-hot) states as the rule
runs and scored against the recorded states at every step. (A straight-through gradient through
the rounding was tried: it pulls a rule that is already exact away from it.)

Training stops as soon as the rollout stage is done and the rounded rule is right on every observed
configuration by at least `margin`; then every recorded run is reproduced exactly, step for step.
An attempt whose count of wrong configurations has not fallen for `patience` iterations, or that
runs out of iterations, is followed by another from the next seed, up to `attempts` or the time
budget; the best is kept.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import NCA
from ..errors import InvalidOption
from .learned import centre_scores, encode_states, predict, rule_model, step_scores, tiles
from .observed import Observations


@dataclass(frozen=True)
class LearnConfig:
    bands: int = 9  # learned 3x3 perception kernels (9 can tell every neighbour apart)
    hidden: int = 64
    lr: float = 0.02
    batch: int = 2048  # configurations per transition batch
    iterations: int = 1500  # most iterations of one attempt
    check_every: int = 25  # iterations between checks of every observed configuration
    margin: float = 1.0  # the right state's score must beat the others' by this much
    rollout_iterations: int = 20
    rollout_length: int = 4  # steps per rollout
    rollout_batch: int = 2  # windows per rollout iteration
    window: int = 48  # side of a rollout window, in cells
    patience: int = 200  # an attempt ends when its wrong configurations have not fallen for this long
    attempts: int = 6
    seed: int = 0

    def __post_init__(self):
        for name in ("bands", "hidden", "batch", "iterations", "check_every", "rollout_length", "rollout_batch",
                     "window", "patience", "attempts"):
            if getattr(self, name) < 1:
                raise InvalidOption(name, f"must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.margin < 0 or self.rollout_iterations < 0:
            raise InvalidOption("lr" if self.lr <= 0 else "margin" if self.margin < 0 else "rollout_iterations",
                                "must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Check:
    """Where an attempt stands: observed configurations it gets wrong, its smallest margin."""

    attempt: int
    iteration: int
    stage: str  # "transitions" or "rollouts"
    wrong: int
    margin: float
    exact: bool  # every observed configuration right by at least the margin


@dataclass
class LearnResult:
    model: NCA
    check: Check  # the kept attempt's last check
    attempts: int  # attempts made
    seconds: float

    @property
    def exact(self) -> bool:
        return self.check.exact


ProgressHook = Callable[[Check], None]


def learn(observed: Observations, config: LearnConfig = LearnConfig(), padding: str = "wrap",
          time_budget: float | None = None, on_check: ProgressHook | None = None,
          should_stop: Callable[[], bool] = lambda: False) -> LearnResult:
    """Learn the rule behind `observed` (see the module's docstring). The model's edges are `padding`.

    It runs on one CPU thread: its batches are a few thousand 3x3 tiles, too little work per
    operation to share, and threads waiting on each other cost more than they gain (on a busy
    2-core machine, 25 times the CPU time)."""
    with _one_thread():
        return _learn(observed, config, padding, time_budget, on_check, should_stop)


@contextlib.contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _learn(observed: Observations, config: LearnConfig, padding: str, time_budget: float | None,
           on_check: ProgressHook | None, should_stop: Callable[[], bool]) -> LearnResult:
    started = time.perf_counter()
    deadline = None if time_budget is None else started + time_budget
    best: tuple[NCA, Check] | None = None
    made = 0
    for attempt in range(config.attempts):
        made += 1
        model, check = _attempt(observed, config, padding, attempt, deadline, on_check, should_stop)
        if best is None or (check.exact, -check.wrong, check.margin) > (best[1].exact, -best[1].wrong, best[1].margin):
            best = (model, check)
        if check.exact or should_stop() or (deadline is not None and time.perf_counter() > deadline):
            break
    return LearnResult(model=best[0].eval(), check=best[1], attempts=made, seconds=time.perf_counter() - started)


def _attempt(observed: Observations, config: LearnConfig, padding: str, attempt: int, deadline: float | None,
             on_check: ProgressHook | None, should_stop: Callable[[], bool]) -> tuple[NCA, Check]:
    """One model trained from the seed `config.seed + attempt`. Returns it and its last check."""
    model = rule_model(observed.states, config.bands, config.hidden, padding, config.seed + attempt)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed + attempt)
    codes, targets = torch.from_numpy(observed.codes), torch.from_numpy(observed.next.astype(np.int64))
    hard, check, rollouts, best = np.arange(len(codes)), None, 0, (len(codes) + 1, 0)
    for iteration in range(1, config.iterations + 1):
        rolling = check is not None and check.wrong == 0 and rollouts < config.rollout_iterations
        batch = _transition_batch(rng, len(codes), hard, config.batch)
        loss = F.cross_entropy(centre_scores(model, tiles(codes[batch], observed.states)), targets[batch])
        if rolling:
            loss = loss + _rollout_loss(model, observed, config, rng)
            rollouts += 1
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if iteration % config.check_every and not (rolling and rollouts == config.rollout_iterations):
            continue
        check, hard = _check(model, observed, config, attempt, iteration, "rollouts" if rollouts else "transitions")
        if on_check is not None:
            on_check(check)
        best = (check.wrong, iteration) if check.wrong < best[0] else best
        stalled = check.wrong > 0 and iteration - best[1] >= config.patience
        if (check.exact and rollouts >= config.rollout_iterations) or stalled or should_stop() \
                or (deadline is not None and time.perf_counter() > deadline):
            break
    if check is None or check.iteration != iteration:
        check, _ = _check(model, observed, config, attempt, iteration, "rollouts" if rollouts else "transitions")
    return model, check


def _transition_batch(rng: np.random.Generator, total: int, hard: np.ndarray, size: int) -> np.ndarray:
    """Indices of configurations: all of them if they fit, else up to half the batch of distinct
    hard ones (each at most once, so that a few cannot crowd out the rest) and the rest at random."""
    if total <= size:
        return np.arange(total)
    chosen = hard[rng.permutation(len(hard))[: size // 2]]
    return np.concatenate([chosen, rng.integers(0, total, size - len(chosen))])


def _check(model: NCA, observed: Observations, config: LearnConfig, attempt: int, iteration: int,
           stage: str) -> tuple[Check, np.ndarray]:
    """The model's rounded rule on every observed configuration; also the indices still hard."""
    next_states, margins = predict(model, observed.codes)
    wrong = next_states != observed.next
    signed = np.where(wrong, -margins, margins)
    hard = np.flatnonzero(signed < config.margin)
    smallest = float(signed.min()) if len(signed) else 0.0
    return Check(attempt, iteration, stage, int(wrong.sum()), smallest, len(hard) == 0), hard


def _rollout_loss(model: NCA, observed: Observations, config: LearnConfig, rng: np.random.Generator) -> torch.Tensor:
    """Cross-entropy over `rollout_length` steps of the rounded rule from windows of the recorded
    runs, on the cells whose neighbourhoods the window still holds (all, where it is the whole grid)."""
    runs, states = observed.runs, observed.states
    N, T, H, W = runs.shape
    steps = min(config.rollout_length, T - 1)
    h, w = min(config.window, H), min(config.window, W)
    picks = [(rng.integers(N), rng.integers(T - steps), rng.integers(H - h + 1), rng.integers(W - w + 1))
             for _ in range(config.rollout_batch)]
    frames = torch.from_numpy(np.stack([runs[n, t:t + steps + 1, y:y + h, x:x + w] for n, t, y, x in picks]))
    x = encode_states(frames[:, 0], states)
    total = x.new_zeros(())
    for k in range(1, steps + 1):
        scores = step_scores(model, x)  # (B, h, w, states)
        keep = _valid_cells(h, w, H, W, k)
        total = total + F.cross_entropy(scores[:, keep].reshape(-1, states), frames[:, k][:, keep].reshape(-1).long())
        x = F.one_hot(scores.detach().argmax(-1), states).float()  # the rounded state, as the rule runs
    return total / steps


def _valid_cells(h: int, w: int, H: int, W: int, k: int) -> torch.Tensor:
    """(h, w) bool: cells of a window whose state after k steps it determines."""
    ys, xs = torch.arange(h), torch.arange(w)
    rows = torch.ones(h, dtype=torch.bool) if h == H else (ys >= k) & (ys < h - k)
    cols = torch.ones(w, dtype=torch.bool) if w == W else (xs >= k) & (xs < w - k)
    return rows[:, None] & cols[None, :]
