"""H.264 video through the ffmpeg binary that imageio-ffmpeg ships, with its failures reported.

Frames go to ffmpeg's stdin as raw RGB; its messages go to a temporary file rather than the
terminal, and its exit status is checked when the video is closed, so a full disk or a broken
encoder is an NCAError with ffmpeg's own last line, never a silently truncated file.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import NCAError

CRF = 10  # x264 constant rate factor: near-lossless for flat-coloured cells (what imageio's quality 8 gave)


@contextlib.contextmanager
def interrupts_held():
    """Hold Ctrl-C and SIGTERM while a child process starts, then deliver them: an interrupt that
    arrived while Popen ran would leave the encoder running unseen, writing its file after ours was
    thrown away. (Signal handlers are the main thread's; elsewhere nothing is held.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        for s in held:
            signal.raise_signal(s)


class H264Writer:
    """Write (H, W, 3) uint8 frames of one size (even sides) to an .mp4 at `fps` frames per second."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps, self.process, self.log = Path(path), fps, None, None

    def _start(self, height: int, width: int) -> None:
        import imageio_ffmpeg

        self.log = tempfile.TemporaryFile()
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", f"{self.fps:g}", "-i", "-", "-an", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-crf", str(CRF), str(self.path)]
        with interrupts_held():
            self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)

    def write(self, frame: np.ndarray) -> None:
        if self.process is None:
            self._start(*frame.shape[:2])
        try:
            self.process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except BrokenPipeError:  # ffmpeg stopped: close() reports why
            self.close()
            raise NCAError(f"cannot write {self.path}: the video encoder stopped") from None

    def close(self) -> None:
        """Finish the file; an NCAError with ffmpeg's last message if it failed."""
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        code = process.wait()
        self.log.seek(0)
        message = [line for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        self.log.close()
        if code != 0:
            detail = message[-1].split("] ", 1)[-1] if message else f"exit status {code}"
            raise NCAError(f"cannot write {self.path}: {detail}")

    def kill(self) -> None:
        """Stop at once (the run was interrupted; the file is being thrown away)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            self.log.close()
