"""The command line's side of voxel bodies: the 3D defaults of `nca train`, what it tells about a
voxel target and a 3D model's figures, and the sizes a 3D run prints."""

from __future__ import annotations

import dataclasses

import typer

from ..engine.config import AXES
from ..errors import InvalidOption
from ..formats.model_file import LoadedModel

from ..growth.quality import Quality
from ..targets import Target
from ..voxels.recipe import VOXEL_MODEL, VOXEL_RECIPE
from ..voxels.targets import DEFAULT_PAD, is_voxel_spec, load_voxel_target
from .console import out
from .options import given

PICTURE_SIZE, PICTURE_PAD = 40, 16  # nca train's --size and --pad for pictures and emoji


def load_body(spec: str, size: int | None, pad: int | None) -> Target:
    """A voxel body target, saying what the loader noticed (e.g. models skipped)."""
    target, notes = load_voxel_target(spec, size, DEFAULT_PAD if pad is None else pad)
    for note in notes:
        out.print(f"Note: {note}")
    D, H, W = target.shape
    out.print(f"Target {target.name}: {int((target.rgba[..., 3] > 0.1).sum())} voxels on a {D}x{H}x{W} grid (D up)")
    return target


def voxel_defaults(ctx: typer.Context, values: dict) -> dict:
    """The options of `nca train` (values by parameter name) with the 3D defaults in place of those
    not given on the command line."""
    defaults = {**VOXEL_RECIPE, **VOXEL_MODEL}
    changed = dict(values)
    for name, value in defaults.items():
        if name in changed and not given(ctx, name):
            changed[name] = value
    return changed


def report_body(quality: Quality) -> None:
    """The occupancy and colour figures of a 3D model, grown and regrown."""
    v = quality.voxels
    out.print(f"Voxel body: grown occupancy IoU {v['grown_iou']:.3f}, colour MSE {v['grown_colour_mse']:.4f}; "
              f"regrown after a ball of radius {quality.cut_radius:g}: IoU {v['regrown_iou']:.3f}, colour MSE "
              f"{v['regrown_colour_mse']:.4f}")


def grid_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def turned_about(loaded: LoadedModel, axis: str | None) -> LoadedModel:
    """`nca rotate --axis`: a voxel body's perception turned about another axis (x, y or z)."""
    if axis is None:
        return loaded
    if loaded.model.config.dims != 3:
        raise InvalidOption("axis", "turns a voxel body; this model grows pictures")
    if axis not in AXES:
        raise InvalidOption("axis", f"must be one of {', '.join(AXES)}, got {axis!r}")
    loaded.model.config = dataclasses.replace(loaded.model.config, axis=axis)
    return loaded


__all__ = ["PICTURE_PAD", "PICTURE_SIZE", "grid_text", "is_voxel_spec", "load_body", "report_body", "turned_about",
           "voxel_defaults"]
