"""Ending a video training run: choose the interpolation baseline's parameters and the NCA's readout
smoothing on the training clip, score the model and both baselines against the clip's full
frames, write the model file.

The model file's `task` metadata holds what reconstruction needs: `pixel_channels`, `keep`,
`mask` ("random" or "fixed"), `steps_per_frame`, the `interpolation` parameters chosen on the
training clip (`sigma_space`, `sigma_time`, with the `keep` and `mask` they were chosen at and
the clip's name), the readout `smoothing` chosen there (`passes`, with the same three), and the
training `clip` (`name`, `frames`, `height`, `width`, `fps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..formats.model_file import save_model
from .baselines import TUNE_SEED, InterpolationParams, tune_interpolation
from .checkpoint import save_video_state
from .model import WARM_UP, VideoReconstructor
from .reconstruct import MaskSpec, Reconstruction, reconstruct, tune_smoothing
from .train import VideoTrainer


@dataclass
class FinishedVideoRun:
    """The training clip's scores (against its full frames), the interpolation and the smoothing
    chosen on it."""

    scores: Reconstruction
    params: InterpolationParams
    smoothing: int
    model_path: Path


def task_metadata(trainer: VideoTrainer, params: InterpolationParams | None, smoothing: int | None = None) -> dict:
    cfg, clip = trainer.config, trainer.clip
    masks = MaskSpec(cfg.keep, cfg.mask_fixed)
    task = {"pixel_channels": clip.pixel_channels, "keep": cfg.keep, "mask": masks.to_dict()["mask"],
            "steps_per_frame": cfg.steps_per_frame,
            "clip": {"name": clip.name, "frames": len(clip), "height": clip.size[0], "width": clip.size[1],
                     "fps": clip.fps}}
    if params is not None:
        task["interpolation"] = {**params.to_dict(), **masks.chosen_on(clip.name)}
    if smoothing is not None:
        task["smoothing"] = {"passes": smoothing, **masks.chosen_on(clip.name)}
    return task


def save_interrupted_video(trainer: VideoTrainer, output: str | Path, state_path: str | Path) -> None:
    """A run stopped early: its resume state and the model so far (not scored, no interpolation)."""
    save_video_state(trainer, state_path)
    save_model(output, trainer.model, None, trainer.summary("interrupted"), kind="video",
               task=task_metadata(trainer, None))


def finish_video_training(trainer: VideoTrainer, output: str | Path, state_path: str | Path | None,
                          stopped: str) -> FinishedVideoRun:
    """Choose the interpolation and the NCA's smoothing on the training clip (masks of their own
    seed), score the NCA and the baselines there (seed 0 masks), write the model with its task
    metadata, and remove the resume state."""
    cfg, clip = trainer.config, trainer.clip
    params, _ = tune_interpolation(clip, cfg.keep, cfg.mask_fixed)
    nca = VideoReconstructor(trainer.model.eval(), clip.pixel_channels, cfg.steps_per_frame, warm_up=WARM_UP)
    smoothing, _ = tune_smoothing(nca, clip, MaskSpec(cfg.keep, cfg.mask_fixed, TUNE_SEED))
    masks = MaskSpec(cfg.keep, cfg.mask_fixed)
    scores = reconstruct(nca.fresh(smoothing), clip, masks, params, params.to_dict(), with_ssim=False,
                         smoothing=masks.chosen_on(clip.name))
    summary = {**trainer.summary(stopped),
               "train_clip_psnr": {k: round(v.overall_psnr, 3) for k, v in scores.tracks.items()}}
    save_model(output, trainer.model, None, summary, kind="video", task=task_metadata(trainer, params, smoothing))
    if state_path is not None and Path(state_path).exists():
        Path(state_path).unlink()
    return FinishedVideoRun(scores, params, smoothing, Path(output))
