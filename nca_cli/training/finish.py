"""Ending a training run: measure the model, write it with its summary, tidy up the resume state."""

from __future__ import annotations

from dataclasses import dataclass, field
import tempfile
from pathlib import Path

import torch

from ..engine import render_rgb
from ..errors import NCAError
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
    quality = measure_quality(trainer.result, trainer.target, runs=QUALITY_RUNS)
    save_or_rescue(output, trainer, {**trainer.summary(stopped), **quality.to_dict()})
    if state_path is not None and Path(state_path).exists():
        Path(state_path).unlink()
    written = write_training_plots(trainer, output) if plots else []
    return FinishedRun(quality=quality, model_path=output, plots=written)


def write_training_plots(trainer: Trainer, output: Path) -> list[Path]:
    """The loss curve and the target beside a pattern grown from the seed."""
    curve, preview = plot_paths(output)
    save_loss_curve(curve, trainer.losses)
    generator = torch.Generator(device=trainer.device).manual_seed(0)
    grown = grow_from_seed(trainer.result, *trainer.target.shape, steps=GROW_STEPS, generator=generator)
    panels = [render_rgb(trainer.target.rgba).numpy(), render_rgb(grown[0]).cpu().numpy()]
    save_panels(preview, panels, ["target", f"grown, {GROW_STEPS} steps"])
    return [curve, preview]
