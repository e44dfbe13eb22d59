"""Ending a video training run: choose the interpolation baseline's parameters on the training clip,
score the model and both baselines against the clip's full frames, write the model file.

The model file's `task` metadata holds what reconstruction needs: `pixel_channels`, `keep`,
`mask` ("random" or "fixed"), `steps_per_frame`, the `interpolation` parameters chosen on the
training clip (`sigma_space`, `sigma_time`, with the `keep` and `mask` they were chosen at and
the clip's name) and the training `clip` (`name`, `frames`, `height`, `width`, `fps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..formats.model_file import save_model
from .baselines import InterpolationParams, tune_interpolation
from .checkpoint import save_video_state
from .model import VideoReconstructor
from .reconstruct import MaskSpec, Reconstruction, reconstruct
from .train import VideoTrainer


@dataclass
class FinishedVideoRun:
    """The training clip's scores (against its full frames) and the interpolation chosen on it."""

    scores: Reconstruction
    params: InterpolationParams
    model_path: Path


def task_metadata(trainer: VideoTrainer, params: InterpolationParams | None) -> dict:
    cfg, clip = trainer.config, trainer.clip
    spec = MaskSpec(cfg.keep, cfg.mask_fixed).to_dict()
    task = {"pixel_channels": clip.pixel_channels, "keep": cfg.keep, "mask": spec["mask"],
            "steps_per_frame": cfg.steps_per_frame,
            "clip": {"name": clip.name, "frames": len(clip), "height": clip.size[0], "width": clip.size[1],
                     "fps": clip.fps}}
    if params is not None:
        task["interpolation"] = {**params.to_dict(), "keep": cfg.keep, "mask": spec["mask"], "tuned_on": clip.name}
    return task


def save_interrupted_video(trainer: VideoTrainer, output: str | Path, state_path: str | Path) -> None:
    """A run stopped early: its resume state and the model so far (not scored, no interpolation)."""
    save_video_state(trainer, state_path)
    save_model(output, trainer.model, None, trainer.summary("interrupted"), kind="video",
               task=task_metadata(trainer, None))


def finish_video_training(trainer: VideoTrainer, output: str | Path, state_path: str | Path | None,
                          stopped: str) -> FinishedVideoRun:
    """Choose the interpolation on the training clip, score the NCA and the baselines there (seed 0
    masks), write the model with its task metadata, and remove the resume state."""
    cfg, clip = trainer.config, trainer.clip
    params, _ = tune_interpolation(clip, cfg.keep, cfg.mask_fixed)
    nca = VideoReconstructor(trainer.model.eval(), clip.pixel_channels, cfg.steps_per_frame)
    scores = reconstruct(nca, clip, MaskSpec(cfg.keep, cfg.mask_fixed), params, params.to_dict(), with_ssim=False)
    summary = {**trainer.summary(stopped),
               "train_clip_psnr": {k: round(v.overall_psnr, 3) for k, v in scores.tracks.items()}}
    save_model(output, trainer.model, None, summary, kind="video", task=task_metadata(trainer, params))
    if state_path is not None and Path(state_path).exists():
        Path(state_path).unlink()
    return FinishedVideoRun(scores, params, Path(output))
