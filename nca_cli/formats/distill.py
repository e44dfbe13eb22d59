"""The Distill article demo's model format: a JSON list of two uint8-quantised dense layers.

Each layer is {"data_b64", "in_ch", "out_ch", "weight_scale", "bias_scale", "type": "uint8"}:
base64 of (in_ch + 1) * out_ch bytes, row-major; row i < in_ch holds the weights from input i to
every output, the last row the biases; byte b decodes to (b / 255 - 0.5) * scale. Perception
inputs are band-major (state, Sobel x, Sobel y, Sobel divided by 8) as in our engine, and the demo
wraps around at the edges, so a model maps onto the engine exactly, with padding "wrap".
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

import numpy as np
import torch

from ..engine import NCA, NCAConfig
from ..errors import NCAError
from .atomic import atomic_output

DEMO_CHANNELS, DEMO_HIDDEN = 16, 128  # what the demo's shaders are written for


def looks_like_distill(path: str | Path) -> bool:
    """Detected by content: a JSON file whose first character is '['."""
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip()[:1] == b"["
    except OSError:
        return False


def _decode_layer(layer: dict, path: Path, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> weight (out_ch, in_ch), bias (out_ch,) as float32."""
    try:
        n_in, n_out = int(layer["in_ch"]), int(layer["out_ch"])
        w_scale, b_scale = float(layer["weight_scale"]), float(layer["bias_scale"])
        if layer.get("type", "uint8") != "uint8":
            raise ValueError(f"type {layer['type']!r} is not uint8")
        data = np.frombuffer(base64.b64decode(layer["data_b64"], validate=True), dtype=np.uint8)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise NCAError(f"{path}: layer {index + 1} is malformed ({exc})") from None
    # Weights are stored as float32: a scale beyond its range would make them infinite.
    largest = float(np.finfo(np.float32).max)
    if not (abs(w_scale) <= largest and abs(b_scale) <= largest) or n_in < 1 or n_out < 1:
        raise NCAError(f"{path}: layer {index + 1} has invalid sizes or scales (in_ch {n_in}, out_ch {n_out}, "
                       f"weight_scale {w_scale}, bias_scale {b_scale})")
    if data.size != (n_in + 1) * n_out:
        raise NCAError(f"{path}: layer {index + 1} holds {data.size} bytes, expected (in_ch + 1) * out_ch = "
                       f"{(n_in + 1) * n_out}")
    values = data.reshape(n_in + 1, n_out).astype(np.float32) / 255.0 - 0.5
    weight = torch.from_numpy(values[:n_in].T * w_scale).contiguous()
    bias = torch.from_numpy(values[n_in] * b_scale).contiguous()
    return weight, bias


def read_distill(path: str | Path) -> NCA:
    """A Distill-format JSON model as an engine model (padding 'wrap')."""
    path = Path(path)
    try:
        layers = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NCAError(f"cannot read {path}: not valid JSON ({exc})") from None
    if not isinstance(layers, list) or len(layers) != 2 or not all(isinstance(l, dict) for l in layers):
        raise NCAError(f"{path}: a Distill model is a JSON list of two layers")
    (w1, b1), (w2, b2) = (_decode_layer(layer, path, i) for i, layer in enumerate(layers))
    hidden, perception = w1.shape
    channels = w2.shape[0]
    if perception != 3 * channels or w2.shape[1] != hidden:
        raise NCAError(f"{path}: layer shapes {tuple(w1.shape[::-1])} and {tuple(w2.shape[::-1])} do not chain "
                       f"as 3C -> hidden -> C")
    try:
        model = NCA(NCAConfig(channels=channels, hidden=hidden, padding="wrap"))
    except ValueError as exc:
        raise NCAError(f"{path}: {exc}") from None
    model.load_state_dict({"w1.weight": w1, "w1.bias": b1, "w2.weight": w2, "w2.bias": b2})
    return model


def _encode_layer(weight: torch.Tensor, bias: torch.Tensor) -> dict:
    """(out, in) weight and (out,) bias -> a demo layer; scales chosen so that the largest value fits."""
    w = weight.detach().cpu().T.numpy()  # (in, out)
    b = bias.detach().cpu().numpy()
    w_scale = float(2 * np.abs(w).max()) or 1.0
    b_scale = float(2 * np.abs(b).max()) or 1.0
    rows = np.concatenate([w / w_scale, b[None] / b_scale]) + 0.5
    data = np.clip(np.round(rows * 255), 0, 255).astype(np.uint8)
    return {"data_b64": base64.b64encode(data.tobytes()).decode("ascii"), "in_ch": int(w.shape[0]),
            "out_ch": int(w.shape[1]), "weight_scale": w_scale, "bias_scale": b_scale, "type": "uint8"}


def write_distill(model: NCA, path: str | Path) -> None:
    """Write a model in the demo's format (atomically); the demo runs 16 channels and 128 hidden units."""
    cfg = model.config
    if cfg.goals:
        raise NCAError(f"the Distill demo runs models of one target; this one has {cfg.goals} goals "
                       "(export it as web, onnx, int8 or safetensors)")
    if (cfg.channels, cfg.hidden) != (DEMO_CHANNELS, DEMO_HIDDEN):
        raise NCAError(f"the Distill demo runs models of {DEMO_CHANNELS} channels and {DEMO_HIDDEN} hidden units; "
                       f"this one has {cfg.channels} and {cfg.hidden}")
    layers = [_encode_layer(model.w1.weight, model.w1.bias), _encode_layer(model.w2.weight, model.w2.bias)]
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(layers))
