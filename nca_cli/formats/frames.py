"""Frame writers for .mp4, .gif, .png and .npy outputs, chosen by the file suffix.

Frames are streamed: every writer encodes or stores a frame when it arrives, so memory does not
grow with the number of steps (a PNG strip is the exception: it is one image of all kept frames).
All writers go through `atomic_output`, so an error or Ctrl-C never leaves half a file at `-o`.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import GifImagePlugin, Image

from .atomic import atomic_output
from ..errors import InvalidOption, NCAError
from ..runtime.limits import MAX_FRAME_SIDE
from .ffmpeg import H264Writer

FORMATS = (".mp4", ".gif", ".png", ".npy")
MIN_VIDEO_SIDE = 256
MAX_FPS = 240


def check_output_path(path: str | Path) -> str:
    """The output's format from its suffix; an NCAError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise NCAError(f"unsupported output {path}: use one of {', '.join(FORMATS)}")
    return suffix


def check_frame_options(scale: int | None = None, fps: float | None = None) -> None:
    """Refuse a pixel scale (pixels per cell; None: the default) or a frame rate that no writer can
    use, before any work is done."""
    if scale is not None and not 1 <= scale <= MAX_FRAME_SIDE:
        raise InvalidOption("scale", f"must be between 1 and {MAX_FRAME_SIDE}, got {scale}")
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise InvalidOption("fps", f"must be a number above 0 and at most {MAX_FPS}, got {fps}")


def gif_rate(fps: float) -> float:
    """The frame rate a GIF stores for `fps`: its delays are whole hundredths of a second, at least
    two (browsers slow faster GIFs down anyway)."""
    return 100 / max(2, round(100 / fps))


def frame_size(height: int, width: int, panels: int, scale: int, gap: int) -> tuple[int, int]:
    """Pixel size (height, width) of a frame of `panels` side-by-side panels of height x width cells."""
    return height * scale, (panels * width + (panels - 1) * gap) * scale


def default_scale(height: int, width: int) -> int:
    """Nearest-neighbour upscaling so the frame's shorter side is at least MIN_VIDEO_SIDE pixels."""
    return max(1, math.ceil(MIN_VIDEO_SIDE / min(height, width)))


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (H*scale, W*scale, 3) by repeating pixels."""
    if scale == 1:
        return frame
    return frame.repeat(scale, axis=0).repeat(scale, axis=1)


class FrameSink:
    """Receives frames: rendered uint8 RGB (H, W, 3) and the raw float state they came from."""

    def add(self, rgb: np.ndarray, state: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (the run succeeded)."""

    def abort(self) -> None:
        """Stop writing (the run failed or was interrupted; the file is thrown away)."""
        self.close()


class _VideoSink(FrameSink):
    """H.264 in yuv420p, which needs even sides: odd ones are padded with white."""

    def __init__(self, tmp: Path, fps: float, scale: int):
        self.scale, self.writer = scale, H264Writer(tmp, fps)

    def add(self, rgb, state):
        frame = upscale(rgb, self.scale)
        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
        self.writer.write(frame)

    def close(self):
        self.writer.close()

    def abort(self):
        self.writer.kill()


class _GifSink(FrameSink):
    """An animated GIF written frame by frame, each with its own adaptive palette."""

    def __init__(self, tmp: Path, fps: float, scale: int):
        self.file = open(tmp, "wb")
        self.scale = scale
        self.duration = round(1000 / gif_rate(fps))  # ms, a whole number of hundredths
        self.started = False

    def add(self, rgb, state):
        image = Image.fromarray(upscale(rgb, self.scale)).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        if not self.started:
            header, _ = GifImagePlugin.getheader(image, info={"loop": 0, "duration": self.duration})
            self.file.write(b"".join(header))
            self.started = True
        for chunk in GifImagePlugin.getdata(image, duration=self.duration, include_color_table=True):
            self.file.write(chunk)

    def close(self):
        self.file.write(b";")  # GIF trailer
        self.file.close()


class _PngSink(FrameSink):
    """The last frame, or with strip=True all frames side by side."""

    def __init__(self, tmp: Path, scale: int, strip: bool):
        self.tmp, self.scale, self.strip = tmp, scale, strip
        self.frames: list[np.ndarray] = []

    def add(self, rgb, state):
        self.frames = [*self.frames, rgb] if self.strip else [rgb]

    def close(self):
        if self.frames:
            Image.fromarray(upscale(np.concatenate(self.frames, axis=1), self.scale)).save(self.tmp, format="PNG")


class _NpySink(FrameSink):
    """Raw float32 states, (frames, *state shape), written frame by frame after the header (plain
    writes, not a memory map: a full disk is then an error, not a crash)."""

    def __init__(self, tmp: Path, frames: int):
        self.file, self.frames, self.shape, self.count = open(tmp, "wb"), frames, None, 0

    def add(self, rgb, state):
        if self.shape is None:
            self.shape = state.shape
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                      "shape": (self.frames, *state.shape)}
            np.lib.format.write_array_header_1_0(self.file, header)
        self.file.write(np.ascontiguousarray(state, dtype=np.float32).tobytes())
        self.count += 1

    def close(self):
        self.file.close()


@contextlib.contextmanager
def open_sink(path: str | Path, frames: int, fps: float = 30.0, scale: int = 1,
              strip: bool = False) -> Iterator[FrameSink]:
    """Open a writer for `path` expecting `frames` frames; the file appears only on success."""
    suffix = check_output_path(path)
    check_frame_options(scale, fps)
    with atomic_output(path) as tmp:
        if suffix == ".mp4":
            sink = _VideoSink(tmp, fps, scale)
        elif suffix == ".gif":
            sink = _GifSink(tmp, fps, scale)
        elif suffix == ".png":
            sink = _PngSink(tmp, scale, strip)
        else:
            sink = _NpySink(tmp, frames)
        try:
            yield sink
        except BaseException:
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                sink.abort()
            raise
        sink.close()
