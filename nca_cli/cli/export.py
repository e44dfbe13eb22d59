"""`nca export`: write a model in another format, and say what quantization cost."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import NCAError
from ..export import QUANTIZED, export_model, exported_model
from ..growth.goals import steer
from ..growth.quality import GROW_STEPS, measure_quality
from .console import out, user_errors
from .options import DeviceOpt, ModelArg, open_model, parse_grid

COMPARE_RUNS = 4  # patterns grown before and after quantization to compare


@user_errors
def export(
    model: ModelArg = None,
    fmt: str = typer.Option(..., "--format", "-f", help="onnx, web, distill, int8 or safetensors."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write (.onnx, .html, .json or .safetensors)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="web: the world the page runs, HxW, e.g. 256x256 (default: the model's canvas)."),
    device: DeviceOpt = "cpu",
):
    """Write a model as ONNX (one CA step), a web page, the Distill demo's JSON, int8, or safetensors.

    Example: nca export lizard.safetensors --format onnx -o lizard.onnx
    """
    loaded = open_model(model, device)
    if grid is not None and fmt != "web":
        raise NCAError("--grid sets the world of a web page: use it with --format web")
    export_model(loaded, fmt, output, parse_grid(grid))
    out.print(f"Wrote {output} ({fmt})")
    if fmt in QUANTIZED and loaded.target is not None:  # a conditional model: its first goal
        before = measure_quality(steer(loaded.model, None), loaded.target, runs=COMPARE_RUNS).grow_loss
        after = measure_quality(steer(exported_model(loaded, fmt, output), None), loaded.target,
                                runs=COMPARE_RUNS).grow_loss
        out.print(f"Grown from the seed ({GROW_STEPS} steps, mean of {COMPARE_RUNS} runs): loss {before:.5f} before "
                  f"quantization, {after:.5f} after")
