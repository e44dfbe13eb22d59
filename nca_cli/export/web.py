"""A self-contained web page that runs a model live (weights inside, nothing fetched)."""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

import torch

from .. import __version__
from ..formats.atomic import atomic_output
from ..formats.model_file import LoadedModel, compact_target
from ..growth.run import canvas_shape


def _floats_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()).decode("ascii")


def export_web(loaded: LoadedModel, path: str | Path) -> None:
    """One self-contained HTML page (weights inside, no network) that runs the model live; atomically."""
    model, cfg = loaded.model, loaded.model.config
    H, W = canvas_shape(loaded.target)
    data = {**cfg.to_dict(), "height": H, "width": W,
            "w1": _floats_b64(model.w1.weight), "b1": _floats_b64(model.w1.bias),
            "w2": _floats_b64(model.w2.weight), "b2": _floats_b64(model.w2.bias),
            "target": None if loaded.target is None else base64.b64encode(
                compact_target(loaded.target.rgba).to(torch.uint8).numpy().tobytes()).decode("ascii")}
    title = html.escape(loaded.target.name if loaded.target is not None else Path(loaded.source).stem)
    page = (resources.files("nca_cli.export") / "web_template.html").read_text(encoding="utf-8")
    page = page.replace("__TITLE__", title).replace("__VERSION__", __version__)
    page = page.replace("__MODEL__", json.dumps(data))
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
