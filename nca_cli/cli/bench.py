"""`nca bench`: time the engine against the dense formulation and print the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from ..bench import run_bench
from ..engine import NCAConfig
from ..errors import NCAError
from ..formats.atomic import atomic_output
from ..runtime import pick_device
from .console import out, progress_bar, user_errors
from .options import DeviceOpt

AGREEMENT = 1e-4  # the most the two formulations may differ by (max abs difference) for the timings to count


@user_errors
def bench(
    batch: int = typer.Option(8, "--batch", help="Samples per batch."),
    grid: int = typer.Option(72, "--grid", help="Grid side in cells."),
    channels: int = typer.Option(16, "--channels", help="State channels."),
    hidden: int = typer.Option(128, "--hidden", help="Hidden units."),
    steps: int = typer.Option(32, "--steps", help="Steps per timed rollout."),
    repeats: int = typer.Option(3, "--repeats", help="Timed rollouts of each formulation, alternating; the median is kept."),
    device: DeviceOpt = "cpu",
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON."),
):
    """Time the engine against a straightforward PyTorch formulation, on this machine, in one run.

    Example: nca bench --json bench.json
    """
    if min(batch, grid, channels, hidden, steps, repeats) < 1 or grid < 3 or channels < 4:
        raise NCAError("--batch, --hidden, --steps and --repeats must be positive, --grid at least 3, "
                       "--channels at least 4")
    for flag, value, most in (("--batch", batch, 1024), ("--grid", grid, 4096), ("--steps", steps, 10_000),
                              ("--repeats", repeats, 100)):
        if value > most:
            raise NCAError(f"{flag} must be at most {most:,}, got {value:,}")
    dev = pick_device(device)
    config = NCAConfig(channels=channels, hidden=hidden, padding="wrap")
    bar = progress_bar()
    with bar:
        task = bar.add_task("bench", total=None)
        report = run_bench(config, batch, grid, grid, steps, dev, repeats=repeats,
                           on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    out.print(f"Shape: batch {batch}, {grid}x{grid} grid, {channels} channels, {hidden} hidden, {steps} steps "
              f"(median of {repeats} rollouts); "
              f"device {report['device']} ({report['threads']} threads), torch {report['torch']}")
    diff = report["agreement_max_abs_diff"]
    verdict = "agree" if diff < AGREEMENT else "DISAGREE"
    out.print(f"Engine and reference {verdict} on the same weights and fire masks: max abs difference {diff:.2e}")
    mm = report["matmul_gflops"]
    out.print(f"Matrix-multiply ceiling: {mm['float32']:.0f} GFLOP/s float32, "
              f"{mm['bfloat16']:.0f} GFLOP/s bfloat16")
    table = Table("state", "mode", "code", "ms/step", "Mcell/s", "GFLOP/s", "ceiling", "peak MB", "speed-up",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for t in report["timings"]:
        speed = f"{report['speedup'][t['mode'] + '_' + t['state']]:.1f}x" if t["formulation"] == "nca" else ""
        table.add_row(t["state"], t["mode"], t["formulation"], f"{t['ms_per_step']:.2f}",
                      f"{t['cell_updates_per_s'] / 1e6:.1f}", f"{t['gflops']:.1f}",
                      f"{t['ceiling_fraction']:.0%}", f"{t['peak_memory_mb']:.0f}", speed)
    out.print(table)
    out.print("GFLOP/s count the two dense layers over every cell (x3 when training), so the engine's "
              "figure is dense-equivalent: it skips dead and resting cells.")
    if json_path is not None:
        with atomic_output(json_path) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
        out.print(f"Wrote {json_path}")
    if diff >= AGREEMENT:
        raise NCAError(f"the engine disagrees with the reference (max abs difference {diff:.2e})")

