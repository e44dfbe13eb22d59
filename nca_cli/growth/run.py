"""Running a model and writing what it does: the one path behind grow, damage and rotate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..engine import NCA, NCAConfig, StepHook, render_rgb
from ..engine.config import FLOAT
from ..errors import InvalidOption, NCAError
from ..formats.frames import MAX_FPS, check_output_path, default_scale, frame_size, open_sink
from ..runtime.limits import MAX_FRAME_SIDE, MAX_PANELS, check_disk, check_memory, check_steps
from ..targets import Target

GAP = 2  # pixels between side-by-side panels
DEFAULT_CANVAS = (72, 72)  # the canvas of a model without a stored target: the article's 40 + 2 x 16


@dataclass(frozen=True)
class RenderOptions:
    """What to write of a run, checked once: the output file (or None: nothing written), the
    number of steps, every how many steps a frame is kept, frame rate, pixels per cell (None:
    at least 256 pixels), a PNG strip of all kept frames, and the seed of the cells' firing."""

    output: Path | None
    steps: int = 400
    every: int = 1
    fps: float = 30.0
    scale: int | None = None
    strip: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.output is not None:
            check_output_path(self.output)
        if self.scale is not None and not 1 <= self.scale <= MAX_FRAME_SIDE:
            raise InvalidOption("scale", f"must be between 1 and {MAX_FRAME_SIDE}, got {self.scale}")
        if self.steps < 0:
            raise NCAError(f"steps must not be negative, got {self.steps}")
        check_steps(self.steps)
        if self.every < 1:
            raise InvalidOption("every", f"must be at least 1, got {self.every}")
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise InvalidOption("fps", f"must be a number above 0 and at most {MAX_FPS}, got {self.fps}")

    @property
    def frames(self) -> int:
        """Number of frames written: the start, every `every`-th step, and always the last step."""
        return 1 + self.steps // self.every + (1 if self.steps % self.every else 0)

    def keeps(self, k: int) -> bool:
        """Whether the state after k steps is written as a frame."""
        return k % self.every == 0 or k == self.steps

    @property
    def writes_one_image(self) -> bool:
        """A .png output without --strip holds only the last frame."""
        return self.output is not None and self.output.suffix.lower() == ".png" and not self.strip


def check_run(config: NCAConfig, shape: tuple[int, ...], batch: int, options: RenderOptions,
              device: torch.device | str = "cpu") -> None:
    """Refuse, before anything is allocated, a run that would not fit: a frame too large to encode
    (grid x scale x panels), too many panels, or states that would not fit in memory or on disk."""
    if batch > MAX_PANELS:
        raise NCAError(f"{batch} panels side by side are too many (at most {MAX_PANELS})")
    cells = math.prod(shape)
    check_memory(config.step_bytes(cells, batch) + FLOAT * config.channels * cells * batch,
                 f"a run on a {'x'.join(map(str, shape))} grid", device)
    if options.output is None:
        return
    if options.output.suffix.lower() == ".npy":
        check_disk(options.output, options.frames * FLOAT * config.channels * cells * batch,
                   f"{options.frames} raw states")
        return
    h, w = frame_size(shape[0], shape[1], batch, options.scale or default_scale(*shape[:2]), GAP)
    if max(h, w) > MAX_FRAME_SIDE:
        raise NCAError(f"frames of {w}x{h} pixels are too large to write (at most {MAX_FRAME_SIDE} a side): "
                       "use a smaller --scale, grid or fewer panels")


def canvas_shape(target: Target | None, grid: tuple[int, int] | None = None) -> tuple[int, int]:
    """The canvas a model runs on: `grid`, else its stored target's size, else DEFAULT_CANVAS."""
    if grid is not None:
        return grid
    return target.shape if target is not None else DEFAULT_CANVAS


def tile_panels(frames: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> one (H, B*W + gaps, 3) image, panels left to right on white."""
    if frames.shape[0] == 1:
        return frames[0]
    gap = np.full((frames.shape[1], GAP, 3), 255, dtype=np.uint8)
    parts = []
    for i, panel in enumerate(frames):
        parts.extend([gap, panel] if i else [panel])
    return np.concatenate(parts, axis=1)


@torch.inference_mode()
def render_run(model: NCA, x: torch.Tensor, options: RenderOptions, angle: float | Sequence[float] | None = None,
               on_step: StepHook | None = None,
               decorate: Callable[[int, np.ndarray], np.ndarray] | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Run `options.steps` updates from x (B, H, W, C), writing the kept frames to `options.output`
    as they are made (several samples side by side). Returns the final state.

    on_step(k, x) sees the state after k steps (after its frame is written) and may return a
    replacement, e.g. a wounded state; decorate(k, rgb) may draw on a frame's panels (B, H, W, 3)
    before they are tiled; on_progress(k, steps) is called after each step. `angle` is one
    rotation, or one per sample: then each sample fires exactly as it would alone.
    """
    check_run(model.config, tuple(x.shape[1:-1]), x.shape[0], options, x.device)
    generator: torch.Generator | list[torch.Generator] = torch.Generator(device=x.device).manual_seed(options.seed)
    if isinstance(angle, Sequence):
        generator = [torch.Generator(device=x.device).manual_seed(options.seed) for _ in angle]
    scale = options.scale or default_scale(*x.shape[1:3])

    def hook(k: int, state: torch.Tensor, sink) -> torch.Tensor | None:
        if sink is not None and options.keeps(k):
            rgb = render_rgb(state).cpu().numpy()
            raw = state.cpu().numpy()
            sink.add(tile_panels(decorate(k, rgb) if decorate is not None else rgb),
                     raw[0] if raw.shape[0] == 1 else raw)
        if on_progress is not None and k:
            on_progress(k, options.steps)
        return on_step(k, state) if on_step is not None else None

    if options.output is None:
        return model.rollout(x, options.steps, angle=angle, generator=generator,
                             on_step=lambda k, s: hook(k, s, None))
    with open_sink(options.output, options.frames, fps=options.fps, scale=scale, strip=options.strip) as sink:
        return model.rollout(x, options.steps, angle=angle, generator=generator,
                             on_step=lambda k, s: hook(k, s, sink))
