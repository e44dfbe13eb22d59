"""Options of conditional models and seeds (`--target`, `--switch`, `--paint`, `--seed-at`,
`--seed-cells`), their parsers, and what they turn into: a GoalPlan and a starting state."""

from __future__ import annotations

import re
from typing import Annotated, Optional

import torch
import typer

from ..engine import rgba_loss, seed_state
from ..errors import InvalidOption, NCAError
from ..formats.model_file import LoadedModel
from ..growth.goals import REGIONS, SWITCH_THRESHOLD, GoalPlan, check_plan, paint_region, steer, steps_below
from ..growth.seeds import placed_loss, placement_reach, random_body_cells, random_grid_cells, seed_cells
from ..training.config import MAX_SEED_CELLS
from .console import out

TargetOpt = Annotated[Optional[str], typer.Option("--target", help="Conditional model: the goal to grow, by emoji, file name or number (default: its first).")]
SwitchOpt = Annotated[Optional[list[str]], typer.Option("--switch", help="Conditional model: switch to another goal at a step, STEP:GOAL (repeatable).")]
PaintOpt = Annotated[Optional[list[str]], typer.Option("--paint", help=f"Conditional model: a half of the grid senses another goal, REGION:GOAL, REGION {', '.join(REGIONS)} (repeatable).")]
SeedAtOpt = Annotated[Optional[list[str]], typer.Option("--seed-at", help="Start from a seed cell at ROW,COL in cells (DEPTH,ROW,COL for a voxel body; repeatable) instead of the centre.")]
SeedCellsOpt = Annotated[Optional[int], typer.Option("--seed-cells", help="Start from N seed cells at random solid cells of the target, or anywhere on a --grid of another size (placed by --seed).")]
MAX_RUN_SEED_CELLS = 100_000  # seeds of a run (training draws at most MAX_SEED_CELLS per sample)


def parse_seed_range(text: str) -> tuple[int, int]:
    """`nca train --seed-cells`: 'N' or 'A-B' -> (A, B), 1 <= A <= B <= MAX_SEED_CELLS."""
    found = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    low, high = (int(found.group(1)), int(found.group(2) or found.group(1))) if found else (0, 0)
    if not found or not 1 <= low <= high <= MAX_SEED_CELLS:
        raise InvalidOption("seed_cells", f"must be N or A-B seed cells from 1 to {MAX_SEED_CELLS}, e.g. 1-3; "
                                          f"got {text!r}")
    return low, high


def plan_goals(loaded: LoadedModel, target: str | None, switch: list[str] | None, paint: list[str] | None,
               steps: int, shape: tuple[int, int]) -> GoalPlan | None:
    """The GoalPlan that --target, --switch and --paint ask for on a run of `steps` steps over a grid
    of `shape` (None for an unconditional model asked for none of them)."""
    start = loaded.goal_index(target) if target is not None else None
    switches = []
    for text in switch or []:
        found = re.fullmatch(r"\s*(\d+)\s*:(.+)", text)
        if not found:
            raise NCAError(f"invalid --switch {text!r}: expected STEP:GOAL, e.g. 250:1")
        switches.append((int(found.group(1)), loaded.goal_index(found.group(2), "switch")))
    painted = None
    for text in paint or []:
        region, _, goal = text.partition(":")
        if region.strip() not in REGIONS or not goal:
            raise NCAError(f"invalid --paint {text!r}: expected REGION:GOAL, REGION one of {', '.join(REGIONS)}")
        painted = paint_region(shape, region.strip(), loaded.goal_index(goal, "paint"), painted)
    if not loaded.model.config.goals:
        return None
    plan = GoalPlan(start or 0, tuple(switches), painted)
    check_plan(plan, loaded.model.config.goals, steps)
    return plan


def parse_seed_at(text: str, dims: int = 2) -> tuple[int, ...]:
    """--seed-at '30,30' -> (30, 30): row, column in cells (depth, row, column for a voxel body)."""
    found = re.fullmatch(r"\s*-?\d+\s*(,\s*-?\d+\s*)*", text)
    numbers = tuple(int(v) for v in text.split(",")) if found else ()
    if len(numbers) != dims:
        expected = "ROW,COL in cells, e.g. 30,30" if dims == 2 else "DEPTH,ROW,COL in cells, e.g. 4,10,10"
        raise NCAError(f"invalid --seed-at {text!r}: expected {expected}")
    return numbers


def seeded_state(loaded: LoadedModel, shape: tuple[int, ...], seed_at: list[str] | None, count: int | None,
                 seed: int) -> torch.Tensor | None:
    """The start that --seed-at or --seed-cells asks for on a grid of `shape` (None: neither, the
    centre seed). -> (1, *shape, C)"""
    config, device = loaded.model.config, loaded.device
    if seed_at and count is not None:
        raise NCAError("give seed cells either where (--seed-at) or how many at random (--seed-cells), not both")
    if seed_at:
        return seed_cells(config, shape, torch.tensor([parse_seed_at(t, len(shape)) for t in seed_at],
                                                       device=device))
    if count is None:
        return None
    if not 1 <= count <= MAX_RUN_SEED_CELLS:
        raise InvalidOption("seed_cells", f"must be from 1 to {MAX_RUN_SEED_CELLS:,}, got {count}")
    generator = torch.Generator().manual_seed(seed)
    if loaded.target is not None and loaded.target.shape == shape:  # on the target's canvas: on its body
        cells = random_body_cells(loaded.target.rgba[..., 3], count, generator)
    else:  # a world of another size: anywhere on it
        cells = random_grid_cells(shape, count, generator)
    return seed_cells(config, shape, cells.to(device))


def loss_trace(loaded: LoadedModel, plan: GoalPlan | None, losses: list[float]):
    """A rollout hook that appends, after each step, the loss against the goal of that step (only
    for a run that switches goals; None otherwise)."""
    if plan is None or not plan.switches or loaded.goals is None:
        return None
    targets = loaded.goals.rgba.to(loaded.device)

    def on_step(k: int, x: torch.Tensor) -> None:
        if k:
            losses.append(float(rgba_loss(x, targets[plan.goal_at(k - 1)])[0]))

    return on_step


def report_run(loaded: LoadedModel, plan: GoalPlan | None, x: torch.Tensor, losses: list[float],
               several_seeds: bool) -> None:
    """The losses of a run on the target's canvas: against the (last) goal's target, where its body
    fits best when it grew from seed cells placed elsewhere, and how soon each switch took hold."""
    rgba = loaded.target.rgba.to(x.device)
    named = f" ({loaded.target.name})" if loaded.goals is not None else ""
    out.print(f"Loss against the target{named}: {float(rgba_loss(x, rgba)[0]):.5f}")
    if several_seeds:
        placed, offset = placed_loss(x, rgba, placement_reach(loaded.target))
        moved = ",".join(map(str, offset[0].tolist()))
        out.print(f"Where the body fits the target best (the target moved by {moved} cells): {float(placed[0]):.5f}")
    for step, goal in (plan.switches if plan is not None and losses else ()):
        name = loaded.goals.names[goal]
        reached = steps_below(losses, step, SWITCH_THRESHOLD)
        later = [s for s, _ in plan.switches if s > step]
        if reached is not None and later and step + reached > min(later):
            reached = None  # the next switch came first
        out.print(f"Switched to {name} at step {step}: " + (
            f"the loss against it fell below {SWITCH_THRESHOLD:g} after {reached} steps" if reached is not None
            else f"the loss against it did not fall below {SWITCH_THRESHOLD:g}"))


def open_goal(loaded: LoadedModel, target: str | None) -> tuple[LoadedModel, object]:
    """The model with the goal --target names as its target, and what to run: a conditional model
    steered to that goal (its first by default), an unconditional one as it is."""
    goal = loaded.goal_index(target) if target is not None else 0
    return loaded.with_goal(goal) if loaded.model.config.goals else loaded, steer(loaded.model, GoalPlan(goal))
