"""Reconstructing a clip from its surviving pixels with the NCA and the baselines, scored against
the full frames, and the side-by-side video: source | what survives | NCA | best baseline.

Every method sees the same masks (one seed). The baselines are scored first, so that the video can
show the better of them; the NCA's pass then writes the video and times the NCA alone (frames per
second of its observe-and-steps, the figure for "faster than real time").
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..formats.frames import default_scale, open_sink
from .baselines import Interpolation, InterpolationParams, LastSeen
from .clips import Clip, check_frame_size
from .masks import check_keep, frame_masks
from .model import VideoReconstructor, smooth
from .scores import ScoreTrack

GAP = 2  # pixels between panels
SMOOTHING_PASSES = (0, 1, 2, 3)  # the readout smoothings a tuning tries


@dataclass(frozen=True)
class MaskSpec:
    """Which pixels survive: the fraction kept, one fixed sensor pattern or a fresh draw per frame,
    and the seed of the draws."""

    keep: float
    fixed: bool = False
    seed: int = 0

    def __post_init__(self):
        check_keep(self.keep)

    def masks(self, clip: Clip):
        return frame_masks(len(clip), clip.size, self.keep, self.fixed, self.seed)

    def to_dict(self) -> dict:
        return {"keep": self.keep, "mask": "fixed" if self.fixed else "random", "seed": self.seed}

    def chosen_on(self, clip_name: str) -> dict:
        """Where a setting was chosen (for the model file and the JSON): the clip, at this keep and
        mask kind."""
        return {"tuned_on": clip_name, "keep": self.keep, "mask": self.to_dict()["mask"]}


@dataclass
class Reconstruction:
    """The scores of every method on one clip, and what was run."""

    clip: Clip
    masks: MaskSpec
    interpolation: dict
    tracks: dict[str, ScoreTrack] = field(default_factory=dict)
    steps_per_frame: int | None = None
    nca_fps: float | None = None
    readout: dict | None = None  # the NCA's warm-up steps and smoothing, with where it was chosen

    @property
    def best_baseline(self) -> str:
        baselines = {k: v for k, v in self.tracks.items() if k != "nca"}
        return max(baselines, key=lambda k: baselines[k].overall_psnr)

    def to_dict(self) -> dict:
        H, W = self.clip.size
        data = {"clip": {"name": self.clip.name, "frames": len(self.clip), "height": H, "width": W,
                         "fps": self.clip.fps, "pixel_channels": self.clip.pixel_channels},
                **self.masks.to_dict(), "interpolation": self.interpolation,
                "methods": {k: v.to_dict() for k, v in self.tracks.items()}, "best_baseline": self.best_baseline}
        if "nca" in self.tracks:
            nca = self.tracks["nca"].overall_psnr
            data.update({"steps_per_frame": self.steps_per_frame, "readout": self.readout,
                         "nca_fps": round(self.nca_fps, 1),
                         "nca_minus_baseline_db": {k: round(nca - v.overall_psnr, 3)
                                                   for k, v in self.tracks.items() if k != "nca"}})
        return data


def baseline_methods(params: InterpolationParams) -> dict:
    """Fresh instances of the baselines, by name."""
    return {"last_seen": LastSeen(), "interpolation": Interpolation(params)}


def score_baselines(clip: Clip, masks: MaskSpec, params: InterpolationParams, interpolation: dict,
                    with_ssim: bool = True) -> Reconstruction:
    """Run and score both baselines over the clip."""
    check_frame_size(clip.size)
    result = Reconstruction(clip, masks, interpolation)
    for name, method in baseline_methods(params).items():
        track = ScoreTrack(with_ssim=with_ssim)
        for t, mask in enumerate(masks.masks(clip)):
            frame = clip.frame(t)
            track.add(method(frame, mask), frame)
        result.tracks[name] = track
    return result


def tune_smoothing(nca: VideoReconstructor, clip: Clip, masks: MaskSpec) -> tuple[int, dict[int, float]]:
    """The readout smoothing (passes, of SMOOTHING_PASSES) under which the NCA scores its best PSNR
    on `clip`: the rule runs once, every smoothing is applied to the same estimates. The fewest
    passes win a tie. Returns it and the PSNR of each."""
    check_frame_size(clip.size)
    runner, tracks = nca.fresh(smoothing=0), {k: ScoreTrack(with_ssim=False) for k in SMOOTHING_PASSES}
    for t, mask in enumerate(masks.masks(clip)):
        frame = clip.frame(t)
        raw = runner(frame, mask)[None]
        for passes, track in tracks.items():
            track.add(smooth(raw, passes)[0], frame)
    psnrs = {k: track.overall_psnr for k, track in tracks.items()}
    return max(SMOOTHING_PASSES, key=lambda k: (psnrs[k], -k)), psnrs


def reconstruct(nca: VideoReconstructor, clip: Clip, masks: MaskSpec, params: InterpolationParams,
                interpolation: dict, output: str | Path | None = None, scale: int | None = None,
                with_ssim: bool = True, smoothing: dict | None = None) -> Reconstruction:
    """Score the baselines, then run the NCA over the clip, score it, and write the side-by-side
    video to `output` (.mp4, .gif) if given. `smoothing` says how the NCA's smoothing was chosen
    (for the JSON)."""
    result = score_baselines(clip, masks, params, interpolation, with_ssim)
    result.steps_per_frame = nca.steps
    result.readout = {"warm_up": nca.warm_up, "smoothing": {"passes": nca.smoothing, **(smoothing or {})}}
    best, track = baseline_methods(params)[result.best_baseline], ScoreTrack(with_ssim=with_ssim)
    H, W = clip.size
    scale = default_scale(H, 4 * W) if scale is None else scale
    seconds = 0.0
    with open_sink(output, len(clip), fps=clip.fps, scale=scale) if output else contextlib.nullcontext() as sink:
        for t, mask in enumerate(masks.masks(clip)):
            frame = clip.frame(t)
            start = time.perf_counter()
            ours = nca(frame, mask)
            seconds += time.perf_counter() - start
            track.add(ours, frame)
            if sink is not None:
                panels = side_by_side([frame, frame * mask[..., None], ours, best(frame, mask)])
                sink.add(panels, panels)
    result.tracks = {"nca": track, **result.tracks}
    result.nca_fps = len(clip) / max(seconds, 1e-9)
    return result


def side_by_side(panels: list[torch.Tensor]) -> np.ndarray:
    """Frames (H, W, P) in [0, 1] next to each other with white gaps. -> (H, n W + gaps, 3) uint8"""
    rgb = [(p.detach().cpu().expand(*p.shape[:2], 3) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
           for p in panels]
    gap = np.full((rgb[0].shape[0], GAP, 3), 255, dtype=np.uint8)
    joined = [rgb[0]]
    for panel in rgb[1:]:
        joined += [gap, panel]
    return np.concatenate(joined, axis=1)
