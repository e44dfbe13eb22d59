"""Ending a training run: measure the model, write it with its summary, tidy up the resume state."""

from __future__ import annotations

from dataclasses import dataclass, field
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
from .resume import save_state
from .trainer import Trainer

QUALITY_RUNS = 8  # patterns grown (and cut and regrown) to score a finished model
SWITCH_RUNS = 4  # patterns per pair of goals grown and switched to score a conditional model


@dataclass
class FinishedRun:
    """What finish_training measured and wrote."""

    quality: Quality  # a conditional model: the mean over its goals
    model_path: Path
    plots: list[Path] = field(default_factory=list)
    goals: list[Quality] = field(default_factory=list)  # a conditional model: each goal's, goal 0 first
    switches: list[Switch] = field(default_factory=list)  # ... and every switch from one goal to another
    merging: list[list[Merge]] = field(default_factory=list)  # trained with several seeds: per goal


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
    it is rescued to the temporary folder (the NCAError says where) and the resume state is kept."""
    output = Path(output)
    run, figures = measure_run(trainer)
    save_or_rescue(output, trainer, {**trainer.summary(stopped), **figures})
    if state_path is not None and Path(state_path).exists():
        Path(state_path).unlink()
    run.model_path = output
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
