"""One CA step as an ONNX graph: the library's dense step, channels-last, with dynamic sizes."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..engine import NCA, DenseStep
from ..errors import NCAError
from ..formats.atomic import atomic_output

OPSET = 17


class OnnxStep(nn.Module):
    """Inputs: state (B, *S, C) float32 (S: H, W, or D, H, W for a voxel body); fire (B, *S) float32,
    1 where a cell updates; angle () float32, the perception rotation in radians (about the
    model's axis in 3D); a conditional model also goal (B, *S) int64, the goal each cell senses.
    Output: the next state (B, *S, C)."""

    def __init__(self, model: NCA):
        super().__init__()
        self.step = DenseStep(model)
        dims = model.config.dims
        self.to_channels_first = (0, dims + 1, *range(1, dims + 1))
        self.to_channels_last = (0, *range(2, dims + 2), 1)

    def forward(self, state: torch.Tensor, fire: torch.Tensor, angle: torch.Tensor,
                goal: torch.Tensor | None = None) -> torch.Tensor:
        return self.step(state.permute(*self.to_channels_first), fire, angle, goal=goal).permute(*self.to_channels_last)


def export_onnx(model: NCA, path: str | Path, opset: int = OPSET) -> None:
    """One CA step as an ONNX graph with dynamic batch and grid size; written atomically."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise NCAError("ONNX export needs the onnx package: pip install onnx") from None
    step = OnnxStep(model.cpu()).eval()
    C, dims = model.config.channels, model.config.dims
    example = (torch.zeros(1, *(8,) * dims, C), torch.ones(1, *(8,) * dims), torch.tensor(0.0))
    sides = dict(enumerate(["batch"] + (["depth"] if dims == 3 else []) + ["height", "width"]))
    dynamic = {"state": sides, "fire": sides, "next_state": sides}
    inputs = ["state", "fire", "angle"]
    if model.config.goals:  # the goal map, as fire's shape
        example, inputs = example + (torch.zeros(1, *(8,) * dims, dtype=torch.long),), inputs + ["goal"]
        dynamic["goal"] = sides
    with atomic_output(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, example, str(tmp), input_names=inputs,
                          output_names=["next_state"], dynamic_axes=dynamic, opset_version=opset, dynamo=False)
