"""`nca video`'s reading of clips and of how a reconstruction is scored: the clips opened with the
command's --size and --frames, the outputs checked before any work, the interpolation's sigmas and
the NCA's smoothing chosen (given, tuned on --tune-on, or as the model stores them), and the scores
written and printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..errors import NCAError
from ..formats.atomic import atomic_output
from ..formats.frames import check_frame_options
from ..video.baselines import TUNE_SEED, InterpolationParams, tune_interpolation
from ..video.clips import Clip, check_frame_size, read_clip
from ..video.model import VideoReconstructor
from ..video.plot import save_psnr_plot
from ..video.reconstruct import MaskSpec, Reconstruction, tune_smoothing
from .console import counted, out
from .options import parse_size


def open_clip(path: Path, size: Optional[str], frames: Optional[int]) -> Clip:
    fit = parse_size(size) if size is not None else None
    if fit is not None:
        check_frame_size(fit)
    clip = read_clip(path, fit, frames)
    check_frame_size(clip.size)
    return clip


def check_outputs(video: Optional[Path], json_path: Optional[Path], plot: Optional[Path],
                  scale: Optional[int] = None) -> None:
    """Refuse unusable output names (and the video's pixel scale) before any work."""
    check_frame_options(scale)
    if video is not None and video.suffix.lower() not in (".mp4", ".gif"):
        raise NCAError(f"the side-by-side video is written as .mp4 or .gif, got {video}")
    if plot is not None and plot.suffix.lower() != ".png":
        raise NCAError(f"the plot is written as .png, got {plot}")
    if json_path is not None and json_path.suffix.lower() != ".json":
        raise NCAError(f"the scores are written as .json, got {json_path}")


def choose_interpolation(clip: Clip, masks: MaskSpec, tune_on: Optional[Clip], sigma_space: Optional[float],
                         sigma_time: Optional[float], stored: dict | None) -> tuple[InterpolationParams, dict]:
    """The interpolation's parameters: given, chosen on --tune-on, or stored in the model (if chosen
    at this keep and mask kind). Returns them and how they were chosen (for the JSON)."""
    if (sigma_space is None) != (sigma_time is None):
        raise NCAError("give both --sigma-space and --sigma-time, or neither")
    if sigma_space is not None:
        params = InterpolationParams(sigma_space, sigma_time)
        return params, {**params.to_dict(), "tuned_on": None}
    if tune_on is not None or stored is None:
        source = clip if tune_on is None else tune_on
        params, _ = tune_interpolation(source, masks.keep, masks.fixed)
        return params, {**params.to_dict(), **masks.chosen_on(source.name)}
    check_tuned_at(stored, masks, "interpolation parameters were", "--sigma-space and --sigma-time")
    return InterpolationParams(stored["sigma_space"], stored["sigma_time"]), stored


def choose_smoothing(nca: VideoReconstructor, clip: Clip, masks: MaskSpec, tune_on: Optional[Clip],
                     given: Optional[int], stored: dict | None) -> tuple[int, dict]:
    """The NCA's readout smoothing (passes), as the interpolation's parameters are chosen: given,
    chosen on --tune-on, or stored in the model (if chosen at this keep and mask kind); a model
    without one has it chosen on CLIP. Returns it and how it was chosen (for the JSON)."""
    if given is not None:
        return given, {"tuned_on": None}
    if tune_on is not None or stored is None:
        source = clip if tune_on is None else tune_on
        passes, _ = tune_smoothing(nca, source, MaskSpec(masks.keep, masks.fixed, TUNE_SEED))
        return passes, masks.chosen_on(source.name)
    check_tuned_at(stored, masks, "readout smoothing was", "--smoothing")
    return int(stored["passes"]), {k: v for k, v in stored.items() if k != "passes"}


def open_tuning_clip(tune_on: Optional[Path], clip: Clip) -> Optional[Clip]:
    """The --tune-on clip, in the channels of the clip it tunes for."""
    return open_clip(tune_on, None, None).with_channels(clip.pixel_channels) if tune_on else None


def check_tuned_at(stored: dict, masks: MaskSpec, what: str, instead: str) -> None:
    """What a model stores was chosen at one keep and mask kind; another needs its own choice."""
    spec = masks.to_dict()
    if stored.get("keep") != masks.keep or stored.get("mask") != spec["mask"]:
        raise NCAError(f"the model's {what} chosen at keep {stored.get('keep')} with "
                       f"{stored.get('mask')} masks; for keep {masks.keep} with {spec['mask']} masks give "
                       f"--tune-on CLIP (e.g. the training clip), or {instead}")


def write_scores(result: Reconstruction, json_path: Optional[Path], plot: Optional[Path]) -> None:
    if json_path is not None:
        with atomic_output(json_path) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
    if plot is not None:
        save_psnr_plot(plot, {k: v.psnr for k, v in result.tracks.items()}, result.clip.fps)


def print_scores(result: Reconstruction) -> None:
    H, W = result.clip.size
    out.print(f"{result.clip.name}: {len(result.clip)} frames of {H}x{W}, keep {result.masks.keep:g} "
              f"({result.masks.to_dict()['mask']} masks)")
    for name, track in result.tracks.items():
        ssim = "" if track.overall_ssim is None else f", SSIM {track.overall_ssim:.3f}"
        out.print(f"  {name.replace('_', ' '):<14} PSNR {track.overall_psnr:6.2f} dB{ssim}")
    if result.nca_fps is not None:
        warm_up, passes = result.readout["warm_up"], result.readout["smoothing"]["passes"]
        out.print(f"  NCA: {counted(result.steps_per_frame, 'step')} per frame ({warm_up} more on "
                  f"the first), read out smoothed {counted(passes, 'pass', 'passes')}, "
                  f"{result.nca_fps:.0f} frames per second")
