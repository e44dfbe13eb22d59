"""Requests too large to serve: memory, disk and sizes checked before any work is done.

Every entry point estimates what a request needs and calls these checks before allocating, so
that `--grid 100000x100000` is one line that names the size rather than an allocator's traceback.
The limits are generous for real work (a 4096x4096 grid runs on a 24 GB machine).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ..errors import NCAError

GB = 1 << 30
MAX_STEPS = 1_000_000  # steps of one run: a million steps of a grown 72x72 pattern take ~20 minutes
MAX_FRAME_SIDE = 8192  # pixels: what video encoders and image viewers take
MAX_PANELS = 64  # side-by-side panels of one run (rotate's angles)


def format_bytes(n: float) -> str:
    """1.5e9 -> '1.4 GB' (binary units, one decimal); small sizes in MB."""
    return f"{n / GB:.1f} GB" if n >= 0.1 * GB else f"{n / (1 << 20):.0f} MB"


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes that can be allocated now: free GPU memory, or the system's available memory."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def check_memory(needed: float, what: str, device: torch.device | str = "cpu") -> None:
    """An NCAError naming the size when `what` would need more memory than is available."""
    have = available_memory(device)
    if needed > have:
        raise NCAError(f"{what} needs about {format_bytes(needed)} of memory; {format_bytes(have)} is available")


def check_disk(path: str | Path, needed: float, what: str) -> None:
    """An NCAError when writing `needed` bytes to `path` would not fit on its disk."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise NCAError(f"{what} needs {format_bytes(needed)} on disk; {format_bytes(free)} is free at {folder}")


def check_steps(steps: int) -> None:
    if not 0 <= steps <= MAX_STEPS:
        raise NCAError(f"steps must be between 0 and {MAX_STEPS:,}, got {steps}")
