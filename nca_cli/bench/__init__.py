"""`nca bench`: the engine timed against the dense formulation on this machine, in one run.

engine_bench  run_bench: agreement check, warm-up, peak memory, alternating timed rollouts
memory        peak memory of one run, device synchronisation
"""

from .engine_bench import Timing, agreement, bench_state, benchmark_model, run_bench

__all__ = ["Timing", "agreement", "bench_state", "benchmark_model", "run_bench"]
