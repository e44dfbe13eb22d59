"""Ending a training run: measure the model, write it with its summary, tidy up the resume state."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import tempfile
from pathlib import Path

import torch

from ..errors import NCAError
from ..formats.model_file import save_model
from ..formats.plots import save_loss_curve, save_panels
from ..growth.goals import GoalPlan, Switch, goal_qualities, measure_switches, steer
from ..growth.quality import GROW_STEPS, Quality, grow_from_seed, measure_quality
from ..growth.run import still_picture
from ..growth.seeds import Merge, measure_merging
from ..targets import GoalSet
from .config import TrainConfig
from .resume import save_state
from .trainer import Trainer

QUALITY_RUNS = 8  # patterns grown (and cut and regrown) to score a finished model
SWITCH_RUNS = 4  # patterns per pair of goals grown and switched to score a conditional model
# A good model: the article's recipe's quality on the lizard (grown and regrown losses, README), and
# the iterations the default recipe takes to reach it there (1100 with the drop after 900 gave
# 0.0042 / 0.0091, docs/training-recipe.md); several targets train twice as long (GOALS_RECIPE).
GOOD_GROWN, GOOD_REGROWN = 0.006, 0.016
GOOD_ITERATIONS = 1100


@dataclass
class FinishedRun:
    """What finish_training measured and wrote."""

    quality: Quality  # a conditional model: the mean over its goals
    model_path: Path
    plots: list[Path] = field(default_factory=list)
    goals: list[Quality] = field(default_factory=list)  # a conditional model: each goal's, goal 0 first
    switches: list[Switch] = field(default_factory=list)  # ... and every switch from one goal to another
    merging: list[list[Merge]] = field(default_factory=list)  # trained with several seeds: per goal
    shortfall: Shortfall | None = None  # set when the model falls short of a good one


def measure_run(trainer: Trainer) -> tuple[FinishedRun, dict]:
    """Score a trained model: grown and regrown losses (per goal for a conditional model, with every
    switch between goals), and when it was trained from several seeds, the losses of growth from 1,
    2 and 3 seeds. Returns the figures (model_path unset) and the same as model-file metadata."""
    model, target = trainer.result, trainer.target
    if not isinstance(target, GoalSet):
        run = FinishedRun(quality=measure_quality(model, target, runs=QUALITY_RUNS), model_path=Path())
        targets = [target]
    else:
        per_goal = goal_qualities(model, target, runs=QUALITY_RUNS)
        mean = Quality(*(sum(getattr(q, f) for q in per_goal) / len(per_goal) for f in ("grow_loss", "regrow_loss")),
                       runs=QUALITY_RUNS, steps=per_goal[0].steps, cut_radius=per_goal[0].cut_radius)
        run = FinishedRun(quality=mean, model_path=Path(), goals=per_goal,
                          switches=measure_switches(model, target, runs=SWITCH_RUNS))
        targets = target.targets
    figures = run.quality.to_dict()
    if run.goals:
        figures["goals"] = [{"goal": t.name, **q.to_dict()} for t, q in zip(targets, run.goals)]
        figures["switching"] = [s.to_dict(target.names) for s in run.switches]
    if trainer.config.seed_cells_max > 1:
        run.merging = [measure_merging(steer(model, GoalPlan(i)), t, runs=QUALITY_RUNS) for i, t in enumerate(targets)]
        figures["merging"] = [{"goal": t.name, "by_seeds": [m.to_dict() for m in rows]}
                              for t, rows in zip(targets, run.merging)]
    return run, figures


@dataclass(frozen=True)
class Shortfall:
    """A finished picture model whose losses are above the bar for a good model: how far its
    training got, and what it is estimated to still need on this machine."""

    quality: Quality
    iterations: int  # trained for, in all (from the start of the model it continued, if any)
    pace: float  # iterations per second of training, this run's
    needed: int  # iterations a good model takes with the default recipe: the estimate's basis
    more: int  # iterations to continue for
    lr_decay_at: int  # ... with the rate dropping at this one of them
    regrows: bool = True  # trained to heal (regen): the regrowth bar applies too

    @property
    def seconds(self) -> float:
        """The estimated training time of the `more` iterations at this run's pace."""
        return self.more / self.pace if self.pace > 0 else math.inf


def shortfall(trainer: Trainer, quality: Quality) -> Shortfall | None:
    """None if the model meets the bar (grown, and regrown for a model trained to heal), or is a
    voxel body (whose figures are of another kind); else its shortfall. Continuing takes the iterations the default recipe needs that the model
    has not had, or as many again as it has had where it had them all, the rate dropping at the
    same share of them as in this run's recipe (the default recipe's, where this one has no drop)."""
    config, regrows = trainer.model.config, trainer.config.mode == "regen"
    if config.dims != 2 or (quality.grow_loss <= GOOD_GROWN and (quality.regrow_loss <= GOOD_REGROWN or not regrows)):
        return None
    needed = GOOD_ITERATIONS * (2 if config.goals else 1)
    done = trainer.iterations_before + trainer.iteration
    pace = trainer.iteration / trainer.elapsed if trainer.elapsed > 0 else 0.0
    more = needed - done if done < needed else done
    recipe = trainer.config if trainer.config.lr_decay_at < trainer.config.iterations else TrainConfig()
    return Shortfall(quality, done, pace, needed, more, round(recipe.decay_fraction * more), regrows)


def save_interrupted(trainer: Trainer, output: str | Path, state_path: str | Path) -> None:
    """A run stopped early: save its resume state and the model so far (not measured)."""
    save_state(trainer, state_path)  # every rank takes part; rank 0 writes
    if trainer.world.leader:
        save_model(output, trainer.result, trainer.target, trainer.summary("interrupted"))


def plot_paths(output: str | Path) -> list[Path]:
    """Where the loss curve and the preview of a model written to `output` go."""
    output = Path(output)
    return [output.with_name(output.stem + ".loss.png"), output.with_name(output.stem + ".preview.png")]


def save_or_rescue(output: Path, trainer: Trainer, summary: dict) -> None:
    """Write the model; if that fails (a full disk, a folder gone), write it to the temporary
    folder instead and say where, so that the training time is not lost."""
    try:
        save_model(output, trainer.result, trainer.target, summary)
    except NCAError as exc:
        rescue = Path(tempfile.mkdtemp(prefix="nca-rescued-")) / output.name
        try:
            save_model(rescue, trainer.result, trainer.target, summary)
        except NCAError:
            raise exc from None
        raise NCAError(f"{exc}; the trained model was saved to {rescue} instead") from None


def finish_training(trainer: Trainer, output: str | Path, state_path: str | Path | None, stopped: str,
                    plots: bool = True) -> FinishedRun:
    """Score the trained model (grown and regrown losses), write it with the run's summary, remove
    the resume state (the run is complete), and optionally write the loss curve and a preview
    beside it (<output>.loss.png, <output>.preview.png). If the model cannot be written where asked,
    it is rescued to the temporary folder (the NCAError says where) and the resume state is kept.
    A picture model above the bar for a good one has its `shortfall` set."""
    output = Path(output)
    run, figures = measure_run(trainer)
    save_or_rescue(output, trainer, {**trainer.summary(stopped), **figures})
    if state_path is not None and Path(state_path).exists():
        Path(state_path).unlink()
    run.model_path = output
    run.shortfall = shortfall(trainer, run.quality)
    run.plots = write_training_plots(trainer, output) if plots else []
    return run


def write_training_plots(trainer: Trainer, output: Path) -> list[Path]:
    """The loss curve and the target beside a pattern grown from the seed (each goal's, for a
    conditional model)."""
    curve, preview = plot_paths(output)
    save_loss_curve(curve, trainer.losses)
    targets = trainer.target.targets if isinstance(trainer.target, GoalSet) else [trainer.target]
    panels, labels = [], []
    for goal, target in enumerate(targets):
        generator = torch.Generator(device=trainer.device).manual_seed(0)
        grown = grow_from_seed(steer(trainer.result, GoalPlan(goal)), *target.shape, steps=GROW_STEPS,
                               generator=generator)
        panels += [still_picture(target.rgba), still_picture(grown[0])]
        labels += ["target" if len(targets) == 1 else f"{goal}: target", f"grown, {GROW_STEPS} steps"]
    save_panels(preview, panels, labels, scale=4 if len(targets) <= 3 else 2)
    return [curve, preview]
