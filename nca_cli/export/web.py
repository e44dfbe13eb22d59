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
from ..engine import NCA
from ..formats.model_file import LoadedModel, compact_target
from ..errors import NCAError
from ..growth.run import canvas_shape

MAX_WEB_SIDE = 1024  # cells: a WebGL2 texture of 1024 x 1024 per four channels is within every browser's limits


def _floats_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()).decode("ascii")


def _target_b64(target) -> str | None:
    if target is None:
        return None
    return base64.b64encode(compact_target(target.rgba).to(torch.uint8).numpy().tobytes()).decode("ascii")


def goal_layers(model: NCA) -> list[dict]:
    """Per goal of a conditional model, how its goal acts on the hidden layer as the page computes
    it: h = (w1 p + b1) * scale + shift, scale and shift (hidden,) each, base64 float32."""
    cfg = model.config
    rows = []
    for vector in model.goal_embedding.weight.detach():
        shift, scale = (vector.chunk(2) if cfg.conditioning == "film" else (vector, torch.zeros_like(vector)))
        rows.append({"shift": _floats_b64(shift), "scale": _floats_b64(1.0 + scale)})
    return rows


def export_web(loaded: LoadedModel, path: str | Path, grid: tuple[int, int] | None = None) -> None:
    """One self-contained HTML page (weights inside, no network) that runs the model live; atomically.
    A conditional model's page has a goal picker that switches the goal while the pattern lives.
    `grid` (H, W): the world the page runs (default: the model's own canvas); the page compares
    with the stored target only on the target's own canvas."""
    model, cfg = loaded.model, loaded.model.config
    H, W = canvas_shape(loaded.target, grid)
    if max(H, W) > MAX_WEB_SIDE:
        raise NCAError(f"the web page runs worlds of up to {MAX_WEB_SIDE} cells a side, got {H}x{W}")
    own = loaded.target is not None and loaded.target.shape == (H, W)
    goals = loaded.goals.targets if loaded.goals is not None else [None] * cfg.goals  # names, and the targets
    data = {**cfg.to_dict(), "height": H, "width": W,
            "w1": _floats_b64(model.w1.weight), "b1": _floats_b64(model.w1.bias),
            "w2": _floats_b64(model.w2.weight), "b2": _floats_b64(model.w2.bias),
            "target": _target_b64(loaded.target) if own else None,
            "goal_layers": goal_layers(model) if cfg.goals else [],
            "goal_names": [t.name if t is not None else str(i) for i, t in enumerate(goals)],
            "goal_targets": [_target_b64(t) if own else None for t in goals]}
    title = html.escape(", ".join(data["goal_names"]) if loaded.goals is not None else
                        loaded.target.name if loaded.target is not None else Path(loaded.source).stem)
    page = (resources.files("nca_cli.export") / "web_template.html").read_text(encoding="utf-8")
    page = page.replace("__TITLE__", title).replace("__VERSION__", __version__)
    page = page.replace("__MODEL__", json.dumps(data))
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
