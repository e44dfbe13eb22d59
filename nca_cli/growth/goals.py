"""Driving a conditional model: which goal its cells sense at each step, and how well it grows,
keeps and turns into each goal.

A GoalPlan says which goal every cell senses at every step: a goal from the start, switches to
other goals at given steps, and regions of the grid painted with a goal of their own. `steer`
binds a plan to a model, giving something that runs like an unconditional model, so that every
run of growth/ (render_run, the wound experiment, the sweep, the quality measurement) runs a
conditional model unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..engine import NCA, NCAConfig, rgba_loss, seed_state
from ..errors import InvalidOption, NCAError
from ..targets import GoalSet
from .quality import GROW_STEPS, Quality, measure_quality

REGIONS = ("left", "right", "top", "bottom")
SWITCH_STEPS = 300  # steps after a switch within which the loss against the new goal should fall
SWITCH_THRESHOLD = 0.01  # ... below this


@dataclass(frozen=True)
class GoalPlan:
    """Goal `start` from step 0, each (step, goal) of `switches` from that step on; cells of painted
    regions (`paint`, (*S) long, -1 where unpainted) sense the region's goal throughout."""

    start: int = 0
    switches: tuple[tuple[int, int], ...] = ()
    paint: torch.Tensor | None = None

    def goal_at(self, k: int) -> int:
        """The goal of unpainted cells during step k (0-based)."""
        goal = self.start
        for step, g in sorted(self.switches):
            if k >= step:
                goal = g
        return goal

    def goals(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Every sample's goals for step k of a run of x (B, *S, C): (B,), or (B, *S) when painted."""
        base = torch.full((x.shape[0],), self.goal_at(k), dtype=torch.long, device=x.device)
        if self.paint is None:
            return base
        paint = self.paint.to(x.device)
        return torch.where(paint >= 0, paint, base.view(-1, *[1] * paint.ndim)).expand(x.shape[:-1])


class Steered(nn.Module):
    """A conditional model run under a fixed GoalPlan: it rolls out like an unconditional model."""

    def __init__(self, model: NCA, plan: GoalPlan):
        super().__init__()
        self.model, self.plan = model, plan

    @property
    def config(self) -> NCAConfig:
        return self.model.config

    def rollout(self, x: torch.Tensor, steps: int, angle=None, generator=None, on_step=None) -> torch.Tensor:
        """NCA.rollout with the plan's goals (step k of this rollout is step k of the plan)."""
        return self.model.rollout(x, steps, angle=angle, generator=generator, on_step=on_step,
                                  goal=lambda k: self.plan.goals(k, x))


def steer(model: NCA, plan: GoalPlan | None) -> NCA | Steered:
    """The model to run: a conditional model under `plan` (goal 0 if none), an unconditional one as it is."""
    if not model.config.goals:
        return model
    return Steered(model, plan or GoalPlan())


def check_plan(plan: GoalPlan, goals: int, steps: int) -> None:
    """An NCAError for goals the model lacks or switches outside a run of `steps` steps."""
    for step, _ in plan.switches:
        if not 0 <= step < steps:
            raise InvalidOption("switch", f"at step {step} is past the run's {steps} steps" if step >= steps
                                else f"step must not be negative, got {step}")
    steps_switched = [step for step, _ in plan.switches]
    twice = sorted({step for step in steps_switched if steps_switched.count(step) > 1})
    if twice:
        raise InvalidOption("switch", f"is given twice at step {twice[0]}: one goal per step")
    used = [plan.start] + [g for _, g in plan.switches] + ([int(plan.paint.max())] if plan.paint is not None else [])
    if any(not 0 <= g < goals for g in used):
        raise NCAError(f"goals are numbers from 0 to {goals - 1}")


def paint_region(shape: tuple[int, int], region: str, goal: int, paint: torch.Tensor | None = None) -> torch.Tensor:
    """A goal map (H, W) long (-1: unpainted) with one half of the grid (`region`) painted `goal`."""
    if region not in REGIONS:
        raise NCAError(f"unknown region {region!r}: use one of {', '.join(REGIONS)}")
    H, W = shape
    paint = torch.full(shape, -1, dtype=torch.long) if paint is None else paint.clone()
    cut = {"left": (slice(None), slice(0, W // 2)), "right": (slice(None), slice(W // 2, None)),
           "top": (slice(0, H // 2), slice(None)), "bottom": (slice(H // 2, None), slice(None))}[region]
    paint[cut] = goal
    return paint


def goal_qualities(model: NCA, goals: GoalSet, runs: int = 8, steps: int = GROW_STEPS) -> list[Quality]:
    """Each goal grown from the seed and regrown after a cut (measure_quality), goal 0 first."""
    return [measure_quality(steer(model, GoalPlan(i)), goals[i], runs=runs, steps=steps) for i in range(len(goals))]


@dataclass
class Switch:
    """Grown towards goal `source`, then switched to `goal`: the first step after the switch at which
    the mean loss against the new goal's target fell below `threshold` (None: not within `after`
    steps), and the loss `after` steps after the switch."""

    source: int
    goal: int
    steps_below: int | None
    final: float
    threshold: float
    after: int

    def to_dict(self, names: list[str]) -> dict:
        return {"from": names[self.source], "to": names[self.goal], "steps_below": self.steps_below,
                "final_loss": self.final, "threshold": self.threshold, "after": self.after}


@torch.inference_mode()
def measure_switches(model: NCA, goals: GoalSet, runs: int = 4, grow_steps: int = GROW_STEPS,
                     after: int = SWITCH_STEPS, threshold: float = SWITCH_THRESHOLD, seed: int = 0) -> list[Switch]:
    """Every ordered pair of goals: `runs` patterns grown `grow_steps` from the seed towards the first,
    then switched to the second for `after` steps; losses against the second, mean over the runs."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    targets = goals.rgba.to(device)
    K, switches = len(goals), []
    for source in range(K):  # one batch per source goal: (K - 1) * runs patterns
        dest = torch.tensor([g for g in range(K) if g != source for _ in range(runs)], device=device)
        start = torch.full_like(dest, source)
        curves: list[torch.Tensor] = []

        def on_step(k: int, x: torch.Tensor) -> None:
            if k > grow_steps:
                curves.append(rgba_loss(x, targets[dest]).view(K - 1, runs).mean(1))

        x = seed_state(model.config, *goals.shape, batch=len(dest), device=device)
        model.rollout(x, grow_steps + after, generator=generator, on_step=on_step,
                      goal=lambda k: start if k < grow_steps else dest)
        curve = torch.stack(curves, dim=1).cpu()  # (K - 1, after)
        for row, goal in enumerate(g for g in range(K) if g != source):
            below = (curve[row] < threshold).nonzero()
            switches.append(Switch(source, goal, int(below[0]) + 1 if len(below) else None, float(curve[row, -1]),
                                   threshold, after))
    return switches


def steps_below(losses: list[float], start: int, threshold: float = SWITCH_THRESHOLD) -> int | None:
    """How many steps after step `start` the loss first fell below `threshold` (losses[k - 1]: after
    step k), or None."""
    for k in range(start + 1, len(losses) + 1):
        if losses[k - 1] < threshold:
            return k - start
    return None
