"""The grown body as a file: a coloured mesh of its voxels' outer faces (.ply, .obj) or a
MagicaVoxel model (.vox).

A voxel is part of the body where alpha exceeds OCCUPIED; its colour is the state's premultiplied
RGB divided by alpha (clamped to 0-1). Meshes are in voxel units with x = W, y = H, z = D (up), as
in the .vox files that targets are read from; each face that borders empty space is one quad, wound
counter-clockwise seen from outside, its four corners carrying the voxel's colour. PLY is binary
(vertex colours as uchar red, green, blue); OBJ puts colours after each vertex ("v x y z r g b",
0-1), the extension that MeshLab, Blender and trimesh read.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import NCAError
from ..formats.atomic import atomic_output
from .metrics import OCCUPIED
from .vox import vox_bytes

BODY_SUFFIXES = (".ply", ".obj", ".vox")


def body_rgba(state: torch.Tensor) -> np.ndarray:
    """The body of one state (D, H, W, C) as straight RGBA uint8 (D, H, W, 4): alpha 255 where
    occupied, 0 elsewhere."""
    alpha = state[..., 3:4].clamp(0, 1)
    rgb = (state[..., :3] / alpha.clamp_min(1e-6)).clamp(0, 1)
    solid = (state[..., 3] > OCCUPIED)[..., None]
    rgba = torch.cat([rgb, torch.ones_like(alpha)], -1) * solid
    return (rgba * 255 + 0.5).to(torch.uint8).cpu().numpy()


def voxel_faces(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The outer faces of a body (D, H, W, 4) uint8: corners (F, 4, 3) float32 (x, y, z) and colours
    (F, 3) uint8."""
    solid = rgba[..., 3] > 0
    padded = np.pad(solid, 1)
    corners, colours = [], []
    for axis in range(3):  # world axis: 0 x (W), 1 y (H), 2 z (D)
        a, b = (axis + 1) % 3, (axis + 2) % 3  # a x b = the axis
        for sign in (1, -1):
            dim = 2 - axis
            neighbour = np.roll(padded, -sign, axis=dim)[1:-1, 1:-1, 1:-1]
            cells = np.argwhere(solid & ~neighbour)  # (N, 3) as (d, h, w)
            centre = cells[:, ::-1].astype(np.float32) + 0.5
            centre[:, axis] += 0.5 * sign
            u, v = np.eye(3, dtype=np.float32)[[a, b] if sign > 0 else [b, a]] * 0.5
            quad = np.stack([-u - v, u - v, u + v, v - u])  # counter-clockwise about the normal
            corners.append(centre[:, None, :] + quad[None])
            colours.append(rgba[cells[:, 0], cells[:, 1], cells[:, 2], :3])
    return np.concatenate(corners), np.concatenate(colours)


def ply_bytes(corners: np.ndarray, colours: np.ndarray) -> bytes:
    """A binary little-endian PLY of quads (F, 4, 3) with one colour each (F, 3) uint8."""
    count = len(corners)
    header = ("ply\nformat binary_little_endian 1.0\ncomment voxel body grown by nca\n"
              f"element vertex {4 * count}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\n"
              f"element face {count}\nproperty list uchar int vertex_indices\nend_header\n").encode()
    vertex = np.zeros(4 * count, dtype=[("p", "<f4", 3), ("c", "u1", 3)])
    vertex["p"] = corners.reshape(-1, 3)
    vertex["c"] = np.repeat(colours, 4, axis=0)
    face = np.zeros(count, dtype=[("n", "u1"), ("i", "<i4", 4)])
    face["n"] = 4
    face["i"] = np.arange(4 * count, dtype=np.int32).reshape(count, 4)
    return header + vertex.tobytes() + face.tobytes()


def obj_text(corners: np.ndarray, colours: np.ndarray) -> str:
    """An OBJ of quads (F, 4, 3) with per-vertex colours ("v x y z r g b", 0-1)."""
    rgb = np.repeat(colours.astype(np.float64) / 255.0, 4, axis=0)
    vertices = np.concatenate([corners.reshape(-1, 3).astype(np.float64), rgb], axis=1)
    lines = ["# voxel body grown by nca: x = W, y = H, z = D (up)"]
    lines += ["v " + " ".join(f"{v:.6g}" for v in row) for row in vertices]
    lines += [f"f {4 * i + 1} {4 * i + 2} {4 * i + 3} {4 * i + 4}" for i in range(len(corners))]
    return "\n".join(lines) + "\n"


def write_body(path: str | Path, state: torch.Tensor) -> int:
    """Write the body of one state (D, H, W, C) to a .ply, .obj or .vox file, atomically. Returns
    the number of voxels in it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in BODY_SUFFIXES:
        raise NCAError(f"unsupported body output {path}: use one of {', '.join(BODY_SUFFIXES)}")
    rgba = body_rgba(state)
    data = vox_bytes(rgba) if suffix == ".vox" else None
    if data is None:
        corners, colours = voxel_faces(rgba)
        data = ply_bytes(corners, colours) if suffix == ".ply" else obj_text(corners, colours).encode()
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return int((rgba[..., 3] > 0).sum())
