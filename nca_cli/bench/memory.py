"""Memory and timing helpers of the bench: peak memory of one run, device synchronisation."""

from __future__ import annotations

import torch

from ..runtime.allocator import release_freed_memory


def sync(device: torch.device) -> None:
    """Wait for queued work on the device (a no-op on the CPU), so that timings are whole."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> float:
    """Start a peak-memory measurement; returns the baseline (MB) that the peak is counted from."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2 ** 20
    release_freed_memory()  # so that what earlier runs freed does not count as this one's
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak resident set size (VmHWM) to the current one
    except OSError:
        pass
    return _process_memory("VmRSS:")


def peak_mb(device: torch.device, baseline: float) -> float:
    """Peak memory (MB) added since reset_peak returned `baseline`."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20 - baseline
    return _process_memory("VmHWM:") - baseline


def _process_memory(field: str) -> float:
    """A line of /proc/self/status in MB (0 where there is none, e.g. off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_memory(run, device: torch.device) -> float:
    """Peak memory (MB) that one run adds, measured from a trimmed heap (so that it pages its memory
    in anew: this run is not timed)."""
    baseline = reset_peak(device)
    run()
    return peak_mb(device, baseline)
