"""The process the library runs in: devices, and how memory is kept.

devices    pick_device: auto, cpu, cuda or mps
allocator  keep freed memory in the process (glibc), release it before measuring
"""

from .allocator import keep_freed_memory, release_freed_memory
from .devices import DEVICES, pick_device

__all__ = ["keep_freed_memory", "release_freed_memory", "DEVICES", "pick_device"]
