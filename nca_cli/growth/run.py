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
from ..formats.frames import check_frame_options, check_output_path, default_scale, frame_size, open_sink
from ..runtime.limits import MAX_FRAME_SIDE, MAX_PANELS, check_disk, check_memory, check_steps
from ..targets import Target
from ..voxels.outputs import BODY_SUFFIXES, write_body
from ..voxels.render import (body_view, default_scale as voxel_scale, frame_shape as voxel_frame_shape, render_voxels,
                             voxel_colours)

GAP = 2  # pixels between side-by-side panels
DEFAULT_CANVAS = (72, 72)  # the canvas of a model without a stored target: the article's 40 + 2 x 16


@dataclass(frozen=True)
class RenderOptions:
    """What to write of a run, checked once: the output file (or None: nothing written), the
    number of steps, every how many steps a frame is kept, frame rate, pixels per cell (None:
    at least 256 pixels), a PNG strip of all kept frames, the seed of the cells' firing, and for
    a voxel body the camera's orbit in degrees per frame (None: one turn over the video). A voxel
    body may also be written as a .ply, .obj or .vox file of its last state."""

    output: Path | None
    steps: int = 400
    every: int = 1
    fps: float = 30.0
    scale: int | None = None
    strip: bool = False
    seed: int = 0
    orbit: float | None = None

    def __post_init__(self):
        if self.output is not None and not self.writes_body:
            check_output_path(self.output)
        if self.orbit is not None and not math.isfinite(self.orbit):
            raise InvalidOption("orbit", f"must be a number of degrees, got {self.orbit}")
        check_frame_options(self.scale, self.fps)
        if self.steps < 0:
            raise NCAError(f"steps must not be negative, got {self.steps}")
        check_steps(self.steps)
        if self.every < 1:
            raise InvalidOption("every", f"must be at least 1, got {self.every}")

    @property
    def frames(self) -> int:
        """Number of frames written: the start, every `every`-th step, and always the last step."""
        return 1 + self.steps // self.every + (1 if self.steps % self.every else 0)

    def keeps(self, k: int) -> bool:
        """Whether the state after k steps is written as a frame."""
        return k % self.every == 0 or k == self.steps

    @property
    def writes_body(self) -> bool:
        """A .ply, .obj or .vox output: the last state of a voxel body as a mesh or voxel model."""
        return self.output is not None and self.output.suffix.lower() in BODY_SUFFIXES

    def azimuth(self, frame: int) -> float:
        """The camera's angle about the vertical axis on frame `frame` of a voxel body's video (degrees)."""
        return frame * (360.0 / self.frames if self.orbit is None else self.orbit)

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
    if len(shape) != config.dims:
        raise NCAError(f"a {config.dims}D model runs on a grid of {config.dims} sides "
                       f"({'HxW' if config.dims == 2 else 'DxHxW'}), got {'x'.join(map(str, shape))}")
    cells = math.prod(shape)
    check_memory(config.step_bytes(cells, batch) + FLOAT * config.channels * cells * batch,
                 f"a run on a {'x'.join(map(str, shape))} grid", device)
    if options.output is None:
        return
    if options.writes_body and (len(shape) != 3 or batch != 1):
        raise NCAError(f"a {options.output.suffix.lower()} output holds one voxel body: "
                       + ("this model grows pictures" if len(shape) != 3 else f"got {batch} panels"))
    if options.writes_body:
        return
    if options.output.suffix.lower() == ".npy":
        check_disk(options.output, options.frames * FLOAT * config.channels * cells * batch,
                   f"{options.frames} raw states")
        return
    h, w = frame_pixels(shape, batch, options.scale)
    if max(h, w) > MAX_FRAME_SIDE:
        raise NCAError(f"frames of {w}x{h} pixels are too large to write (at most {MAX_FRAME_SIDE} a side): "
                       "use a smaller --scale, grid or fewer panels")


def frame_pixels(shape: tuple[int, ...], panels: int, scale: int | None) -> tuple[int, int]:
    """Pixel size (height, width) of the frames of a run on a grid of `shape` (2D cells drawn as
    squares, or a voxel body's turntable), `panels` side by side."""
    if len(shape) == 3:
        h, w = voxel_frame_shape(shape, scale or voxel_scale(shape))
        return h, panels * w + (panels - 1) * GAP
    return frame_size(shape[0], shape[1], panels, scale or default_scale(*shape[:2]), GAP)


def frame_of(state: torch.Tensor, options: RenderOptions, frame: int,
             decorate: Callable[[int, np.ndarray], np.ndarray] | None, k: int) -> np.ndarray:
    """What a frame shows of states (B, *S, C): the cells' colours (B, *S, 3), drawn on by
    decorate(k, rgb), tiled left to right; a voxel body seen from the frame's azimuth."""
    if state.ndim == 5:
        rgb, solid = voxel_colours(state)
        rgb = decorate(k, rgb) if decorate is not None else rgb
        scale = options.scale or voxel_scale(tuple(state.shape[1:4]))
        return tile_panels(np.stack([render_voxels(rgb[b], solid[b], options.azimuth(frame), scale)
                                     for b in range(len(rgb))]))
    rgb = render_rgb(state).cpu().numpy()
    return tile_panels(decorate(k, rgb) if decorate is not None else rgb)


def still_picture(state: torch.Tensor, voxel_scale: float = 2) -> np.ndarray:
    """One state (*S, C) as a small picture (h, w, 3) uint8: its cells, or a view of a voxel body
    `voxel_scale` pixels a voxel (previews, which upscale it)."""
    if state.ndim == 4:
        return body_view(state, scale=voxel_scale)[0]
    return render_rgb(state).cpu().numpy()


def canvas_shape(target: Target | None, grid: tuple[int, ...] | None = None) -> tuple[int, ...]:
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
    """Run `options.steps` updates from x (B, *S, C), writing the kept frames to `options.output`
    as they are made (several samples side by side; a voxel body as a turntable), or the last state
    of a voxel body as a .ply, .obj or .vox file. Returns the final state.

    on_step(k, x) sees the state after k steps (after its frame is written) and may return a
    replacement, e.g. a wounded state; decorate(k, rgb) may colour a frame's cells (B, *S, 3)
    before they are drawn; on_progress(k, steps) is called after each step. `angle` is one
    rotation, or one per sample: then each sample fires exactly as it would alone.
    """
    check_run(model.config, tuple(x.shape[1:-1]), x.shape[0], options, x.device)
    generator: torch.Generator | list[torch.Generator] = torch.Generator(device=x.device).manual_seed(options.seed)
    if isinstance(angle, Sequence):
        generator = [torch.Generator(device=x.device).manual_seed(options.seed) for _ in angle]
    # Voxel frames are drawn at their final size; cells of a 2D grid are upscaled by the writer.
    scale = 1 if x.ndim == 5 else options.scale or default_scale(*x.shape[1:3])
    written = [0]

    def hook(k: int, state: torch.Tensor, sink) -> torch.Tensor | None:
        if sink is not None and options.keeps(k):
            raw = state.cpu().numpy()
            sink.add(frame_of(state, options, written[0], decorate, k), raw[0] if raw.shape[0] == 1 else raw)
            written[0] += 1
        if on_progress is not None and k:
            on_progress(k, options.steps)
        return on_step(k, state) if on_step is not None else None

    if options.output is None or options.writes_body:
        x = model.rollout(x, options.steps, angle=angle, generator=generator, on_step=lambda k, s: hook(k, s, None))
        if options.writes_body:
            write_body(options.output, x[0])
        return x
    with open_sink(options.output, options.frames, fps=options.fps, scale=scale, strip=options.strip) as sink:
        return model.rollout(x, options.steps, angle=angle, generator=generator,
                             on_step=lambda k, s: hook(k, s, sink))
