"""`nca bench`: how fast the engine is on this machine, against a straightforward formulation.

The reference is the library's dense step (engine/dense.py): the plain way to write a Growing-NCA
step in PyTorch (channels-first, per-channel Sobel filters as one convolution through a reshape,
two 1x1 convolutions, dense over every cell). Both run with the same weights; before timing, the
bench checks that they agree on the same fire masks.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from ..engine import NCA, DenseStep, NCAConfig
from ..engine.config import FLOAT
from ..runtime.limits import check_memory
from .memory import peak_memory, sync


@dataclass
class Timing:
    """One timed configuration."""

    formulation: str  # "nca" or "reference"
    mode: str  # "train" (forward + backward) or "infer"
    state: str  # "pattern" or "full"
    ms_per_step: float
    cell_updates_per_s: float
    gflops: float  # dense-equivalent: the two dense layers over every cell, x3 when training
    ceiling_fraction: float  # of the float32 matrix-multiply rate
    peak_memory_mb: float  # the most memory the timed rollout added (resident set on a CPU)


def matmul_rate(dtype: torch.dtype, device: torch.device, n: int = 1024, seconds: float = 0.5) -> float:
    """GFLOP/s of square matrix multiplies of size n in `dtype`; 0 where the dtype is unsupported."""
    try:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        a @ b
    except (RuntimeError, TypeError):
        return 0.0
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    sync(device)
    return 2 * n ** 3 * runs / (time.perf_counter() - start) / 1e9


def bench_state(model: NCA, batch: int, height: int, width: int, kind: str, device) -> torch.Tensor:
    """A state to time on. 'pattern': random cells in a disc half the grid across (a fifth of the
    grid, about what a grown 40-pixel emoji covers on the 72x72 grid); 'full': every cell
    alive, the worst case for the engine, which skips dead cells. -> (B, H, W, C)"""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, height, width, model.config.channels, generator=g)
    if kind == "pattern":
        rows = torch.arange(height).view(-1, 1) - height // 2
        cols = torch.arange(width).view(1, -1) - width // 2
        disc = (rows ** 2 + cols ** 2) <= (min(height, width) / 4) ** 2
        x = x * disc[None, :, :, None]
    else:
        x[..., 3] = x[..., 3] * 0.8 + 0.2  # every cell above the alive threshold
    return x.to(device)


def benchmark_model(config: NCAConfig, device: torch.device, seed: int = 0) -> NCA:
    """Random weights of the usual scale (the last layer is not zero, so cells do change)."""
    torch.manual_seed(seed)
    model = NCA(config).to(device)
    torch.nn.init.normal_(model.w2.weight, std=0.02)
    return model


def agreement(model: NCA, reference: DenseStep, x: torch.Tensor, steps: int = 8) -> float:
    """Max abs difference between the two formulations over `steps` steps with the same fire masks."""
    g = torch.Generator(device=x.device).manual_seed(1)
    ours, theirs = x, x.permute(0, 3, 1, 2)
    worst = 0.0
    with torch.inference_mode():
        for _ in range(steps):
            fire = torch.rand(x.shape[:3], generator=g, device=x.device) < model.config.fire_rate
            ours = model.step(ours, fire=fire)
            theirs = reference(theirs, fire)
            worst = max(worst, float((ours - theirs.permute(0, 2, 3, 1)).abs().max()))
    return worst


def rollout_runner(step, x: torch.Tensor, fire_shape: tuple[int, int, int], steps: int, train: bool,
                   fire_rate: float):
    """A function that runs one rollout of `steps` steps from x (with backward if train), on fire
    masks drawn once so that every run, and both formulations, do the same work."""
    g = torch.Generator(device=x.device).manual_seed(2)
    fires = [torch.rand(fire_shape, generator=g, device=x.device) < fire_rate for _ in range(steps)]

    def run(n: int = steps) -> None:
        with torch.enable_grad() if train else torch.inference_mode():
            y = x
            for fire in fires[:n]:
                y = step(y, fire)
            if train:
                y.square().mean().backward()
        sync(x.device)

    return run


def seconds_per_step(run, steps: int) -> float:
    """Wall time of one run of `steps` steps, per step."""
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / steps


def time_formulations(runs: dict, steps: int, repeats: int, device: torch.device) -> tuple[dict, dict]:
    """Warm each run up, take its peak memory on a run of its own, then time them alternately
    `repeats` times. Returns (median seconds per step, peak MB), each by formulation."""
    peaks, samples = {}, {form: [] for form in runs}
    for form, run in runs.items():
        run(2)  # warm up
        peaks[form] = peak_memory(run, device)
    for _ in range(repeats):
        for form, run in runs.items():
            samples[form].append(seconds_per_step(run, steps))
    return {form: statistics.median(v) for form, v in samples.items()}, peaks


def dense_rollout_bytes(config: NCAConfig, cells: int, steps: int) -> int:
    """Memory (bytes) the dense formulation keeps for backward over a rollout: per step and cell the
    state, perception, hidden layer (twice) and update, in float32."""
    return FLOAT * cells * steps * (config.channels * (2 + config.bands) + 2 * config.hidden)


def run_bench(config: NCAConfig, batch: int, height: int, width: int, steps: int, device: torch.device,
              repeats: int = 3, on_progress=None) -> dict:
    """Everything `nca bench` reports, as a dict (see the README for the keys).

    Each configuration is warmed up and its peak memory measured on a run of its own; then the
    engine and the reference are timed alternately, `repeats` times each, and the median kept, so
    that a slow moment of a shared machine does not land on one side of a ratio.
    """
    check_memory(dense_rollout_bytes(config, batch * height * width, steps) + config.rollout_bytes(
        height * width, batch, steps), f"a bench of batch {batch} on a {height}x{width} grid over {steps} steps", device)
    model = benchmark_model(config, device)
    reference = DenseStep(model)
    fp32 = matmul_rate(torch.float32, device)
    bf16 = matmul_rate(torch.bfloat16, device)
    flops_per_cell = 2 * (config.bands * config.channels * config.hidden + config.hidden * config.channels)
    cells = batch * height * width
    check = agreement(model, reference, bench_state(model, batch, height, width, "pattern", device))
    timings = []
    plan = [(state, mode) for state in ("pattern", "full") for mode in ("train", "infer")]
    for i, (state, mode) in enumerate(plan):
        x = bench_state(model, batch, height, width, state, device)
        train = mode == "train"
        runs = {"nca": rollout_runner(lambda s, f: model.step(s, fire=f), x, x.shape[:3], steps, train,
                                      config.fire_rate),
                "reference": rollout_runner(reference, x.permute(0, 3, 1, 2).contiguous(), x.shape[:3],
                                            steps, train, config.fire_rate)}
        seconds, peaks = time_formulations(runs, steps, repeats, device)
        for form in runs:
            gflops = flops_per_cell * cells * (3 if train else 1) / seconds[form] / 1e9
            timings.append(Timing(form, mode, state, seconds[form] * 1e3, cells / seconds[form], gflops,
                                  gflops / fp32 if fp32 else math.nan, peaks[form]))
        if on_progress is not None:
            on_progress(i + 1, len(plan))
    return {
        "shape": {"batch": batch, "height": height, "width": width, "channels": config.channels,
                  "hidden": config.hidden, "steps": steps},
        "repeats": repeats,
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "matmul_gflops": {"float32": fp32, "bfloat16": bf16},
        "agreement_max_abs_diff": check,
        "timings": [asdict(t) for t in timings],
        "speedup": speedups(timings),
    }


def speedups(timings: list[Timing]) -> dict[str, float]:
    """Reference time / engine time for each mode and state, keyed "train_pattern" and so on."""
    by = {(t.formulation, t.mode, t.state): t.ms_per_step for t in timings}
    return {f"{mode}_{state}": by["reference", mode, state] / by["nca", mode, state]
            for state in ("pattern", "full") for mode in ("train", "infer")}
