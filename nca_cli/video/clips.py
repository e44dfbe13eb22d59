"""Clips: video read into memory as frames, fitted to a size, and the demo clips made locally.

A clip's frames are uint8 (T, H, W, P), P = 3 (RGB) or 1 (grey), so that a long clip takes a
quarter of the memory it would as floats; `frame(t)` gives one frame as float32 in [0, 1].
Any format imageio reads is accepted (mp4 and webm through the ffmpeg that imageio-ffmpeg ships,
gif through Pillow). Demo clips are made from pictures that ship with scikit-image (a slow loop of
the camera over a photograph) or from the project's bundled lizard growing, so nothing is fetched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import InvalidOption, NCAError

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, RGB -> grey
DEFAULT_FPS = 30.0
MIN_SIDE = 8  # pixels: room for a few neighbourhoods of cells and SSIM's 7 x 7 window


def check_frame_size(size: tuple[int, int]) -> None:
    """Frames smaller than MIN_SIDE on a side are refused."""
    if min(size) < MIN_SIDE:
        raise NCAError(f"frames of {size[0]}x{size[1]} pixels are too small: video needs at least "
                       f"{MIN_SIDE}x{MIN_SIDE}")


@dataclass
class Clip:
    """Frames (T, H, W, P) uint8 with P = 3 (RGB) or 1 (grey), their rate, and a name."""

    frames: np.ndarray
    fps: float = DEFAULT_FPS
    name: str = "clip"

    @property
    def size(self) -> tuple[int, int]:
        """Height and width in pixels."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def pixel_channels(self) -> int:
        return int(self.frames.shape[3])

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def frame(self, t: int, device=None) -> torch.Tensor:
        """Frame t as float32 in [0, 1]. -> (H, W, P)"""
        return torch.from_numpy(self.frames[t]).to(device).float() / 255.0

    def with_channels(self, channels: int) -> "Clip":
        """The clip as grey (1) or RGB (3): grey to RGB repeats the value, RGB to grey takes luma."""
        if channels == self.pixel_channels:
            return self
        if channels == 3:
            return Clip(self.frames.repeat(3, axis=3), self.fps, self.name)
        return Clip(to_grey(self.frames), self.fps, self.name)

    def is_grey(self) -> bool:
        """One channel, or three that are equal everywhere (a grey video decoded as RGB)."""
        f = self.frames
        return f.shape[3] == 1 or bool((f[..., 0] == f[..., 1]).all() and (f[..., 1] == f[..., 2]).all())


def to_grey(frames: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (..., 1) uint8 luma."""
    luma = frames.astype(np.float32) @ LUMA
    return np.clip(luma + 0.5, 0, 255).astype(np.uint8)[..., None]


def fit_frame(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """(h, w, 3) uint8 scaled to cover `size` (height, width) keeping its aspect, then centre-cropped
    to it (Lanczos). None: unchanged."""
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    fitted = ImageOps.fit(Image.fromarray(frame), (size[1], size[0]), method=Image.Resampling.LANCZOS)
    return np.asarray(fitted)


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """A decoded frame, (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) in uint8 -> (h, w, 3) uint8; alpha is
    composited over white."""
    if frame.dtype != np.uint8:
        raise NCAError(f"frames of type {frame.dtype} are not supported: expected 8-bit video")
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[2] == 4:
        alpha = frame[..., 3:4].astype(np.float32) / 255.0
        frame = (frame[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame[..., :3]


def read_clip(path: str | Path, size: tuple[int, int] | None = None, max_frames: int | None = None) -> Clip:
    """Decode a video or animated image (mp4, webm, gif, ...) into a Clip, each frame fitted to
    `size` (height, width), at most `max_frames` frames; grey videos come back with P = 1."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise NCAError(f"video not found: {path}")
    if max_frames is not None and max_frames < 1:
        raise InvalidOption("frames", f"must be at least 1, got {max_frames}")
    frames = []
    try:
        for frame in iio.imiter(path):
            frames.append(fit_frame(as_rgb(np.asarray(frame)), size))
            if max_frames is not None and len(frames) == max_frames:
                break
        meta = iio.immeta(path)
    except OSError as exc:
        if "does not contain any stream" in str(exc):  # ffmpeg opened the file but found no frames
            raise NCAError(f"{path} has no frames") from None
        raise NCAError(f"cannot read {path}: not a video that imageio can decode (mp4, webm, gif, ...)") from None
    if not frames:
        raise NCAError(f"{path} has no frames")
    clip = Clip(np.stack(frames), frames_per_second(meta), path.stem)
    return clip.with_channels(1) if clip.is_grey() else clip


def frames_per_second(meta: dict) -> float:
    """The rate from a reader's metadata: `fps` (ffmpeg), or a gif's frame `duration` in ms."""
    fps = meta.get("fps")
    if isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0:
        return float(fps)
    duration = meta.get("duration")
    if isinstance(duration, (int, float)) and duration > 0:
        return 1000.0 / duration
    return DEFAULT_FPS


def write_clip(path: str | Path, clip: Clip) -> None:
    """Encode a clip to .mp4 or .gif (frame writers of the project, atomically)."""
    from ..formats.frames import open_sink

    if Path(path).suffix.lower() not in (".mp4", ".gif"):
        raise NCAError(f"a clip is written as .mp4 or .gif, got {path}")
    with open_sink(path, len(clip), fps=clip.fps) as sink:
        for frame in clip.frames:
            rgb = as_rgb(frame)
            sink.add(rgb, rgb)
