"""Taking a model elsewhere: ONNX (one CA step), a web page, the Distill demo's JSON, int8, safetensors.

onnx  one step as an ONNX graph (the library's dense step)
web   a self-contained page that runs the model live (web_template.html)
"""

from __future__ import annotations

from pathlib import Path

from ..engine import NCA
from ..errors import NCAError
from ..formats.distill import read_distill, write_distill
from ..formats.model_file import LoadedModel, load_model, save_model
from .onnx import export_onnx
from .web import export_web

FORMATS = {"onnx": ".onnx", "web": ".html", "distill": ".json", "int8": ".safetensors",
           "safetensors": ".safetensors"}
QUANTIZED = ("int8", "distill")  # formats whose weights lose precision
PICTURE_FORMATS = ("web", "distill")  # formats whose runners are 2D


def check_export(fmt: str, output: Path) -> None:
    """An NCAError unless `fmt` is a format and `output` has its suffix."""
    if fmt not in FORMATS:
        raise NCAError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if Path(output).suffix.lower() != FORMATS[fmt]:
        raise NCAError(f"format {fmt} writes a {FORMATS[fmt]} file, got {output}")


def export_model(loaded: LoadedModel, fmt: str, output: Path, grid: tuple[int, int] | None = None) -> None:
    """Write `loaded` in format `fmt` to `output`; `grid` (H, W) is the world a web page runs."""
    check_export(fmt, output)
    model = loaded.model
    if model.config.dims == 3 and fmt in PICTURE_FORMATS:
        raise NCAError(f"format {fmt} runs pictures (2D grids); this model grows a voxel body: use onnx, int8 "
                       "or safetensors")
    if fmt == "onnx":
        export_onnx(model, output)
    elif fmt == "web":
        export_web(loaded, output, grid)
    elif fmt == "distill":
        write_distill(model, output)
    else:
        save_model(output, model, loaded.goals or loaded.target,
                   {**loaded.training, "exported_from": Path(loaded.source).name},
                   int8=fmt == "int8", kind=loaded.kind, task=loaded.task)


def exported_model(loaded: LoadedModel, fmt: str, output: Path) -> NCA:
    """The model as an int8 or Distill export of `loaded` at `output` will run (quantized weights, the
    original configuration), to compare with the original."""
    if fmt == "int8":
        return load_model(output).model
    model = NCA(loaded.model.config)
    model.load_state_dict(read_distill(output).state_dict())
    return model
