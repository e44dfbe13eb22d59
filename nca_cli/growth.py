"""Run a model for some steps and stream the frames to a writer: the one path behind grow, damage and rotate."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .engine import NCA, render_rgb
from .errors import NCAError
from .video import FrameSink

GAP = 2  # pixels between side-by-side panels


def parse_grid(text: str) -> tuple[int, int]:
    """'96x128' -> (96, 128): height x width in cells."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise NCAError(f"invalid grid {text!r}: expected HxW, e.g. 96x96") from None
    if h < 3 or w < 3:
        raise NCAError(f"invalid grid {text!r}: both sides must be at least 3 cells")
    return h, w


def kept_steps(steps: int, every: int) -> int:
    """Number of frames written: the start, every `every`-th step, and always the last step."""
    if steps < 0:
        raise NCAError(f"steps must not be negative, got {steps}")
    if every < 1:
        raise NCAError(f"--every must be at least 1, got {every}")
    return 1 + steps // every + (1 if steps % every else 0)


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
def run_growth(model: NCA, x: torch.Tensor, steps: int, sink: FrameSink | None = None, every: int = 1,
               generator: torch.Generator | list[torch.Generator] | None = None,
               angle: float | list[float] | None = None,
               before_step: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
               decorate: Callable[[int, np.ndarray], np.ndarray] | None = None,
               on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Run `steps` updates from x (B, H, W, C), writing a frame at step 0, every `every` steps and at the end.

    before_step(k, x) may change the state just before step k+1 (e.g. to wound it); decorate(k, rgb)
    may draw on a frame's panels (B, H, W, 3) before they are tiled; on_step(k, x) sees the state
    after step k. `angle` is one rotation for the whole batch, or one per sample; then `generator`
    may be one per sample too, so that each sample fires as it would run alone. Returns the final
    state.
    """
    kept_steps(steps, every)  # validates steps and every
    angles = angle if isinstance(angle, list) else None
    generators = generator if isinstance(generator, list) else [generator] * len(x)

    def emit(k: int, state: torch.Tensor) -> None:
        if sink is None:
            return
        rgb = render_rgb(state).cpu().numpy()
        if decorate is not None:
            rgb = decorate(k, rgb)
        raw = state.cpu().numpy()
        sink.add(tile_panels(rgb), raw[0] if raw.shape[0] == 1 else raw)

    emit(0, x)
    for k in range(steps):
        if before_step is not None:
            x = before_step(k, x)
        if angles is None:
            x = model.step(x, angle=angle, generator=generator)
        else:
            x = torch.cat([model.step(x[i : i + 1], angle=a, generator=generators[i]) for i, a in enumerate(angles)])
        if (k + 1) % every == 0 or k + 1 == steps:
            emit(k + 1, x)
        if on_step is not None:
            on_step(k + 1, x)
    return x
