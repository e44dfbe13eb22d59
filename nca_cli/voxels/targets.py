"""Voxel targets: a MagicaVoxel .vox file, a mesh, or an .npy array, fitted onto a padded 3D grid.

The grid is (D, H, W) with D up. The body's longest side is fitted to `size` voxels (a body
already that size is taken as it is), then padded by `pad` empty voxels on every side, and a
little more where needed so that the grid's centre cell, where growth starts, lies on the body.
Colours are premultiplied by alpha, as for pictures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import NCAError
from ..formats.states import read_npy
from ..runtime.limits import check_memory
from ..targets import Target
from .meshes import MESH_SUFFIXES, voxelise_mesh
from .metrics import OCCUPIED
from .vox import read_vox

VOXEL_SUFFIXES = (".vox", ".npy") + MESH_SUFFIXES
# Voxel files (.vox, .npy) are taken at their own size up to NATIVE_SIZE voxels a side (voxel art is
# drawn at its resolution; resampling blurs it), larger ones fitted to it; meshes to MESH_SIZE.
# One empty voxel around the body by default: with three, the rule grew a halo of faint cells into
# the margin and each iteration cost half as much again (docs/3d.md).
NATIVE_SIZE, MESH_SIZE, DEFAULT_PAD = 32, 24, 1
MAX_SIZE = 1024
# Bytes per grid cell while a target is made: the float RGBA grid, resampling's accumulators and
# the padded copy, with room for the intermediate arrays (measured: about 40 at 128^3).
LOAD_BYTES_PER_CELL = 64


def is_voxel_spec(spec: str) -> bool:
    """A target file that is a voxel body (by its suffix)."""
    return Path(spec).suffix.lower() in VOXEL_SUFFIXES


def read_npy_body(path: Path) -> np.ndarray:
    """An .npy array (D, H, W, 4) of straight RGBA, uint8 (0-255) or float (0-1). -> float32 (D, H, W, 4)"""
    array = read_npy(path, "a voxel body", mmap=True)
    if array.ndim != 4 or array.shape[-1] != 4 or min(array.shape[:3]) < 1:
        raise NCAError(f"{path} holds an array of shape {tuple(array.shape)}; a voxel body is (D, H, W, 4) RGBA")
    if array.dtype == np.uint8:
        return np.asarray(array, dtype=np.float32) / 255.0
    if array.dtype.kind != "f":
        raise NCAError(f"{path} holds {array.dtype} values; a voxel body is uint8 (0-255) or float (0-1)")
    values = np.array(array, dtype=np.float32)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise NCAError(f"{path} holds values outside 0-1; float voxel colours are 0 to 1")
    return values


def read_body(path: Path, size: int, notes: list[str]) -> np.ndarray:
    """The file's body as straight RGBA float32 (D, H, W, 4), before fitting and padding."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_npy_body(path)
    if suffix == ".vox":
        vox = read_vox(path)
        if len(vox.models) > 1:
            notes.append(f"{path.name} holds {len(vox.models)} models; using the first")
        return vox.rgba(0).astype(np.float32) / 255.0
    return voxelise_mesh(path, size)


def fit_body(body: np.ndarray, size: int) -> np.ndarray:
    """Resample a body (D, H, W, 4) so its longest side is `size`: each new voxel takes 2x2x2
    samples of the old grid, is solid where at least half of them are, and takes their mean colour.
    A body already `size` long is returned as it is."""
    longest = max(body.shape[:3])
    if longest == size:
        return body
    scale = size / longest
    shape = [max(1, round(n * scale)) for n in body.shape[:3]]
    out = np.zeros((*shape, 4), dtype=np.float32)
    for offsets in np.ndindex(2, 2, 2):
        index = [np.minimum(((np.arange(m) + 0.25 + 0.5 * o) / scale).astype(int), n - 1)
                 for m, n, o in zip(shape, body.shape[:3], offsets)]
        sample = body[np.ix_(*index)]
        out[..., :3] += sample[..., :3] * sample[..., 3:]
        out[..., 3] += sample[..., 3]
    solid = out[..., 3] >= 4.0
    out[..., :3] /= np.maximum(out[..., 3:], 1e-6)
    out[..., 3] = solid
    out[~solid] = 0
    return out


def seed_padding(alpha: np.ndarray, pad: int) -> list[tuple[int, int]]:
    """Per axis, the empty voxels to add before and after a body (D, H, W) so that there are at least
    `pad` on each side and the grid's centre cell (index length // 2) lies on the body: the centre
    of the evenly padded grid if it is solid, else the solid voxel nearest it."""
    centre = np.array([(n + 2 * pad) // 2 - pad for n in alpha.shape])
    if alpha[tuple(centre)] > OCCUPIED:
        return [(pad, pad)] * alpha.ndim
    solid = np.argwhere(alpha > OCCUPIED)
    anchor = solid[((solid - centre) ** 2).sum(1).argmin()]
    pads = []
    for p, n in zip(anchor, alpha.shape):
        before, after = pad, pad
        while (before + n + after) // 2 != before + p:  # move the centre one cell at a time
            if (before + n + after) // 2 < before + p:
                after += 1
            else:
                before += 1
        pads.append((before, after))
    return pads


def planned_shape(body_shape: tuple[int, ...], size: int, pad: int) -> tuple[int, ...]:
    """A bound on the padded grid (D, H, W) that a body of `body_shape` fitted to `size` needs."""
    scale = size / max(body_shape)
    return tuple(max(1, round(n * scale)) + 2 * pad + max(1, round(n * scale)) for n in body_shape)


def check_size(size: int, pad: int) -> None:
    if not 4 <= size <= MAX_SIZE:
        raise NCAError(f"target size must be between 4 and {MAX_SIZE} voxels, got {size}")
    if not 0 <= pad <= MAX_SIZE:
        raise NCAError(f"padding must be between 0 and {MAX_SIZE} voxels, got {pad}")


def check_grid_memory(shape: tuple[int, ...]) -> None:
    """Refuse, before allocating it, a voxel grid that would not fit in memory."""
    check_memory(LOAD_BYTES_PER_CELL * math.prod(shape), f"a {'x'.join(map(str, shape))} voxel grid")


def load_voxel_target(spec: str, size: int | None = None, pad: int = DEFAULT_PAD) -> tuple[Target, list[str]]:
    """A voxel body from a .vox, mesh or .npy file, its longest side fitted to `size` voxels (None:
    a voxel file's own size up to NATIVE_SIZE, a mesh MESH_SIZE) and padded. Returns the target
    (rgba (D, H, W, 4) premultiplied) and notes worth telling the user (e.g. models skipped)."""
    check_size(NATIVE_SIZE if size is None else size, pad)
    path = Path(spec)
    if not path.is_file():
        raise NCAError(f"target not found: {spec}" if not path.exists() else f"target is a directory: {spec}")
    check_grid_memory(((size or NATIVE_SIZE) + 2 * pad,) * 3)
    notes: list[str] = []
    body = read_body(path, size or MESH_SIZE, notes)
    size = size or min(max(body.shape[:3]), NATIVE_SIZE)
    if not (body[..., 3] > OCCUPIED).any():
        raise NCAError(f"target {path.name} is empty: no voxel is opaque enough to grow")
    check_grid_memory(planned_shape(body.shape[:3], size, pad))
    body = fit_body(body, size)
    if not (body[..., 3] > OCCUPIED).any():
        raise NCAError(f"target {path.name} is empty at {size} voxels: try a larger --size")
    body[..., :3] *= body[..., 3:]
    grid = np.pad(body, seed_padding(body[..., 3], pad) + [(0, 0)])
    return Target(name=path.name, rgba=torch.from_numpy(np.ascontiguousarray(grid)), size=size, pad=pad), notes
