"""Taking a model elsewhere: ONNX (one CA step), a web page, the Distill demo's JSON, int8, safetensors."""

from __future__ import annotations

import base64
import html
import json
import warnings
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .atomic import atomic_output
from .checkpoint import LoadedModel, compact_target, load_model, save_model
from .distill import read_distill, write_distill
from .engine import NCA
from .errors import NCAError

FORMATS = {"onnx": ".onnx", "web": ".html", "distill": ".json", "int8": ".safetensors",
           "safetensors": ".safetensors"}


class OnnxStep(nn.Module):
    """One CA step written with dense, exportable operations (the engine's sparse gather is not).

    Inputs: state (B, H, W, C) float32; fire (B, H, W) float32, 1 where a cell updates; angle ()
    float32, the perception rotation in radians. Output: the next state (B, H, W, C).
    """

    def __init__(self, model: NCA):
        super().__init__()
        cfg = model.config
        C, hidden = cfg.channels, cfg.hidden
        self.channels, self.padding, self.threshold = C, cfg.padding, cfg.alive_threshold
        # The grouped convolution below yields channel-major perception (c0 id, c0 x, c0 y, c1 id,
        # ...); reorder the first layer's band-major columns to match.
        w1 = model.w1.weight.detach().reshape(hidden, 3, C).transpose(1, 2).reshape(hidden, 3 * C)
        self.register_buffer("w1", w1[:, :, None, None].clone())
        self.register_buffer("b1", model.w1.bias.detach().clone())
        self.register_buffer("w2", model.w2.weight.detach()[:, :, None, None].clone())
        self.register_buffer("b2", model.w2.bias.detach().clone())
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        identity = torch.zeros(3, 3)
        identity[1, 1] = 1.0
        self.register_buffer("identity", identity)
        self.register_buffer("sobel_x", sobel)
        self.register_buffer("sobel_y", sobel.T.contiguous())

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "wrap":
            x = torch.cat([x[:, :, -1:], x, x[:, :, :1]], dim=2)
            return torch.cat([x[:, :, :, -1:], x, x[:, :, :, :1]], dim=3)
        return F.pad(x, (1, 1, 1, 1))

    def alive(self, x: torch.Tensor) -> torch.Tensor:
        return (F.max_pool2d(self.pad(x[:, 3:4]), 3, stride=1) > self.threshold).to(x.dtype)

    def forward(self, state: torch.Tensor, fire: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        x = state.permute(0, 3, 1, 2)  # (B, C, H, W)
        c, s = torch.cos(angle), torch.sin(angle)
        kernels = torch.stack([self.identity, c * self.sobel_x - s * self.sobel_y, s * self.sobel_x + c * self.sobel_y])
        weight = kernels.unsqueeze(1).repeat(self.channels, 1, 1, 1)  # (3C, 1, 3, 3), channel-major
        perception = F.conv2d(self.pad(x), weight, groups=self.channels)
        hidden = F.relu(F.conv2d(perception, self.w1, self.b1))
        update = F.conv2d(hidden, self.w2, self.b2)
        pre = self.alive(x)
        x = x + update * fire.unsqueeze(1)
        x = x * pre * self.alive(x)
        return x.permute(0, 2, 3, 1)


def export_onnx(model: NCA, path: str | Path, opset: int = 17) -> None:
    """One CA step as an ONNX graph with dynamic batch and grid size; written atomically."""
    step = OnnxStep(model.cpu()).eval()
    C = model.config.channels
    example = (torch.zeros(1, 8, 8, C), torch.ones(1, 8, 8), torch.tensor(0.0))
    dynamic = {"state": {0: "batch", 1: "height", 2: "width"}, "fire": {0: "batch", 1: "height", 2: "width"},
               "next_state": {0: "batch", 1: "height", 2: "width"}}
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise NCAError("ONNX export needs the onnx package: pip install onnx") from None
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, example, str(tmp), input_names=["state", "fire", "angle"],
                          output_names=["next_state"], dynamic_axes=dynamic, opset_version=opset, dynamo=False)


def _floats_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()).decode("ascii")


def export_web(loaded: LoadedModel, path: str | Path) -> None:
    """One self-contained HTML page (weights inside, no network) that runs the model live; atomically."""
    model, cfg = loaded.model, loaded.model.config
    H, W = loaded.target.shape if loaded.target is not None else (72, 72)
    data = {**cfg.to_dict(), "height": H, "width": W,
            "w1": _floats_b64(model.w1.weight), "b1": _floats_b64(model.w1.bias),
            "w2": _floats_b64(model.w2.weight), "b2": _floats_b64(model.w2.bias),
            "target": None if loaded.target is None else base64.b64encode(
                compact_target(loaded.target.rgba).to(torch.uint8).numpy().tobytes()).decode("ascii")}
    title = html.escape(loaded.target.name if loaded.target is not None else Path(loaded.source).stem)
    page = (resources.files("nca_cli") / "web_template.html").read_text(encoding="utf-8")
    page = page.replace("__TITLE__", title).replace("__VERSION__", __version__)
    page = page.replace("__MODEL__", json.dumps(data))
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")


def exported_model(loaded: LoadedModel, fmt: str, output: Path) -> NCA:
    """The model as an int8 or Distill export of `loaded` at `output` will run (quantized weights, the
    original configuration), to compare with the original."""
    if fmt == "int8":
        return load_model(output).model
    model = NCA(loaded.model.config)
    model.load_state_dict(read_distill(output).state_dict())
    return model


def export_model(loaded: LoadedModel, fmt: str, output: Path) -> None:
    """Write `loaded` in format `fmt` to `output`."""
    if fmt not in FORMATS:
        raise NCAError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if output.suffix.lower() != FORMATS[fmt]:
        raise NCAError(f"format {fmt} writes a {FORMATS[fmt]} file, got {output}")
    model = loaded.model
    if fmt == "onnx":
        export_onnx(model, output)
    elif fmt == "web":
        export_web(loaded, output)
    elif fmt == "distill":
        write_distill(model, output)
    else:
        save_model(output, model, loaded.target, {**loaded.training, "exported_from": Path(loaded.source).name},
                   int8=fmt == "int8")
