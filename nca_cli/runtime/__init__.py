"""The process the library runs in: devices, and how memory is kept.

devices      pick_device: auto, cpu, cuda or mps
allocator    keep freed memory in the process (glibc), release it before measuring
limits       memory, disk and size checks made before anything is allocated
distributed  the ranks of a data-parallel run started by torchrun (gloo, NCCL)
"""

from .allocator import keep_freed_memory, release_freed_memory
from .devices import DEVICES, pick_device

__all__ = ["keep_freed_memory", "release_freed_memory", "DEVICES", "pick_device"]
