"""Keep freed memory in the process instead of handing it back to the system after every step.

A CPU rollout allocates and frees the same large tensors every step. glibc serves blocks above a
size threshold with fresh mmap calls and unmaps them when freed, so each step page-faults its
memory in again: on a wide pattern that system time outweighed the arithmetic. Turning mmap
allocations off and raising the trim threshold makes freed blocks reusable. The command line does
this at start-up; library users can call it themselves. A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Ask glibc to reuse freed memory; returns whether it took the settings."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def release_freed_memory() -> None:
    """Hand freed memory back to the system now (glibc's malloc_trim), e.g. before measuring a peak."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
