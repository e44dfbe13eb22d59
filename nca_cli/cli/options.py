"""Options shared by several commands (one declaration each) and the parsers of option text."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import NCAError
from ..formats.model_file import LoadedModel, load_model
from ..growth.recovery import MAX_SWEEP_RADII
from ..runtime import pick_device

ModelArg = Annotated[Optional[str], typer.Argument(help="Model file or bundled model name (default: lizard).")]
OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="Output: .mp4, .gif, .png (last frame) or .npy (raw states); for a voxel body also .ply, .obj (a mesh of the last state) or .vox.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Steps to run.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Frames per second of the video.")]
ScaleOpt = Annotated[Optional[int], typer.Option("--scale", help="Pixels per cell (default: at least 256 px video).")]
EveryOpt = Annotated[int, typer.Option("--every", help="Keep every K-th step as a frame.")]
GridOpt = Annotated[Optional[str], typer.Option("--grid", help="Grow on an HxW canvas, e.g. 128x128, or DxHxW for a voxel body (default: the model's).")]
OrbitOpt = Annotated[Optional[float], typer.Option("--orbit", help="Voxel body videos: the camera's turn per frame in degrees (default: one turn over the video).")]
StripOpt = Annotated[bool, typer.Option("--strip", help="With a .png output: all kept frames side by side.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed for the cells' firing.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]


def given(ctx: typer.Context, name: str) -> bool:
    """Whether option `name` was given on the command line (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def open_model(model: Optional[str], device: str) -> LoadedModel:
    """A model argument (file, Distill JSON or bundled name) loaded onto the --device."""
    return load_model(model, device=pick_device(device))


def parse_size(text: str, what: str = "size") -> tuple[int, int]:
    """'96x128' -> (96, 128): height x width in cells, both positive."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise NCAError(f"invalid {what} {text!r}: expected HxW, e.g. 96x96") from None
    if h < 1 or w < 1:
        raise NCAError(f"invalid {what} {text!r}: both sides must be positive")
    return h, w


def parse_grid(text: str | None) -> tuple[int, ...] | None:
    """--grid HxW, or DxHxW for a voxel body (None: the model's own canvas); sides at least 3 cells."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) == 3:
        try:
            sides = tuple(int(p) for p in parts)
        except ValueError:
            raise NCAError(f"invalid grid {text!r}: expected HxW or DxHxW, e.g. 96x96 or 32x24x24") from None
    else:
        sides = parse_size(text, "grid")
    if min(sides) < 3:
        raise NCAError(f"invalid grid {text!r}: {'both sides' if len(sides) == 2 else 'every side'} must be at least 3 cells")
    return sides


def parse_duration(text: str) -> float | None:
    """'90s', '10m', '1h30m', '2h' or plain seconds -> seconds; 'none' -> None (no limit)."""
    text = text.strip().lower()
    if text == "none":
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    else:
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", text)
        if not text or parts is None:
            raise NCAError(f"invalid duration {text!r}: use e.g. 90s, 10m or 1h30m")
        h, m, s = (float(p) if p else 0.0 for p in parts.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise NCAError(f"duration must be positive, got {text!r}")
    return seconds


def parse_angles(text: str) -> list[float]:
    """--theta '0,45,90' -> [0.0, 45.0, 90.0] (degrees)."""
    try:
        angles = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise NCAError(f"invalid --theta {text!r}: expected degrees, e.g. 45 or 0,45,90") from None
    if not angles or not all(math.isfinite(a) for a in angles):
        raise NCAError(f"invalid --theta {text!r}: expected degrees, e.g. 45 or 0,45,90")
    return angles


def parse_radii(text: str) -> list[float]:
    """--radii '2:20:3' (from:to:step, inclusive) or '2,5,10' -> radii in cells (at most MAX_SWEEP_RADII)."""
    usage = f"invalid --radii {text!r}: use FROM:TO:STEP (e.g. 2:20:3) or a list (e.g. 2,5,10)"
    try:
        parts = [float(p) for p in text.split(":" if ":" in text else ",")]
    except ValueError:
        raise NCAError(usage) from None
    if not parts or not all(math.isfinite(p) for p in parts):
        raise NCAError(usage)
    if ":" in text:
        if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
            raise NCAError(usage)
        lo, hi, step = parts
        count = int((hi - lo) / step + 1e-9) + 1
        if count > MAX_SWEEP_RADII:
            raise NCAError(f"invalid --radii {text!r}: that is {count:,} radii, at most {MAX_SWEEP_RADII}")
        parts = [lo + i * step for i in range(count)]
    if min(parts) < 0:
        raise NCAError(f"invalid --radii {text!r}: radii must not be negative")
    if len(parts) > MAX_SWEEP_RADII:
        raise NCAError(f"invalid --radii {text!r}: that is {len(parts):,} radii, at most {MAX_SWEEP_RADII}")
    return parts
