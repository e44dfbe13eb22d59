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
    """Inputs: state (B, H, W, C) float32; fire (B, H, W) float32, 1 where a cell updates; angle ()
    float32, the perception rotation in radians. Output: the next state (B, H, W, C)."""

    def __init__(self, model: NCA):
        super().__init__()
        self.step = DenseStep(model)

    def forward(self, state: torch.Tensor, fire: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        return self.step(state.permute(0, 3, 1, 2), fire, angle).permute(0, 2, 3, 1)


def export_onnx(model: NCA, path: str | Path, opset: int = OPSET) -> None:
    """One CA step as an ONNX graph with dynamic batch and grid size; written atomically."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise NCAError("ONNX export needs the onnx package: pip install onnx") from None
    step = OnnxStep(model.cpu()).eval()
    C = model.config.channels
    example = (torch.zeros(1, 8, 8, C), torch.ones(1, 8, 8), torch.tensor(0.0))
    dynamic = {"state": {0: "batch", 1: "height", 2: "width"}, "fire": {0: "batch", 1: "height", 2: "width"},
               "next_state": {0: "batch", 1: "height", 2: "width"}}
    with atomic_output(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, example, str(tmp), input_names=["state", "fire", "angle"],
                          output_names=["next_state"], dynamic_axes=dynamic, opset_version=opset, dynamo=False)
