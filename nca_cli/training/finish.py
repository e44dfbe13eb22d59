"""Ending a training run: measure the model, write it with its summary, tidy up the resume state."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..engine import render_rgb
from ..formats.model_file import save_model
from ..formats.plots import save_loss_curve, save_panels
from ..growth.quality import GROW_STEPS, Quality, grow_from_seed, measure_quality
from .resume import save_state
from .trainer import Trainer

QUALITY_RUNS = 8  # patterns grown (and cut and regrown) to score a finished model


@dataclass
class FinishedRun:
    """What finish_training measured and wrote."""

    quality: Quality
    model_path: Path
    plots: list[Path] = field(default_factory=list)


def save_interrupted(trainer: Trainer, output: str | Path, state_path: str | Path) -> None:
    """A run stopped early: save its resume state and the model so far (not measured)."""
    save_state(trainer, state_path)
    save_model(output, trainer.result, trainer.target, trainer.summary("interrupted"))


def finish_training(trainer: Trainer, output: str | Path, state_path: str | Path | None, stopped: str,
                    plots: bool = True) -> FinishedRun:
    """Score the trained model (grown and regrown losses), write it with the run's summary, remove
    the resume state (the run is complete), and optionally write the loss curve and a preview
    beside it (<output>.loss.png, <output>.preview.png)."""
    output = Path(output)
    quality = measure_quality(trainer.result, trainer.target, runs=QUALITY_RUNS)
    save_model(output, trainer.result, trainer.target, {**trainer.summary(stopped), **quality.to_dict()})
    if state_path is not None and Path(state_path).exists():
        Path(state_path).unlink()
    written = write_training_plots(trainer, output) if plots else []
    return FinishedRun(quality=quality, model_path=output, plots=written)


def write_training_plots(trainer: Trainer, output: Path) -> list[Path]:
    """The loss curve and the target beside a pattern grown from the seed."""
    curve, preview = output.with_name(output.stem + ".loss.png"), output.with_name(output.stem + ".preview.png")
    save_loss_curve(curve, trainer.losses)
    H, W = trainer.target.shape
    generator = torch.Generator(device=trainer.device).manual_seed(0)
    grown = grow_from_seed(trainer.result, H, W, GROW_STEPS, generator=generator)
    panels = [render_rgb(trainer.target.rgba).numpy(), render_rgb(grown[0]).cpu().numpy()]
    save_panels(preview, panels, ["target", f"grown, {GROW_STEPS} steps"])
    return [curve, preview]
