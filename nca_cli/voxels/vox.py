"""MagicaVoxel .vox files, read and written from the format's public description.

A .vox file is 'VOX ', a version number, and a RIFF-style tree of chunks (4-byte id, content
size, children size, content, children) under one 'MAIN' chunk: per model a 'SIZE' (x, y, z) and
an 'XYZI' (count, then x, y, z, colour index: one byte each), an optional 'RGBA' palette (256 x
RGBA; colour index i is entry i - 1), and chunks this reader skips (scene graph, materials).
Without an 'RGBA' chunk the format's default palette applies. Z is up: a voxel (x, y, z) is the
grid cell [z, y, x] of a (D, H, W) grid (D up).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NCAError
from ..formats.atomic import atomic_output

VERSION = 150
MAX_SIDE = 256  # a model's sides are at most 256 (coordinates are one byte each)


def default_palette() -> np.ndarray:
    """The palette of a file without an 'RGBA' chunk, indexed by colour index. -> (256, 4) uint8.

    Index 0 is empty; then the 6-level colour cube from white down (blue varying fastest) without
    black, then ten-step ramps of red, green, blue and grey."""
    levels = [0xFF, 0xCC, 0x99, 0x66, 0x33, 0x00]
    cube = [(r, g, b) for r in levels for g in levels for b in levels][:-1]
    ramp = [0xEE, 0xDD, 0xBB, 0xAA, 0x88, 0x77, 0x55, 0x44, 0x22, 0x11]
    ramps = [(v, 0, 0) for v in ramp] + [(0, v, 0) for v in ramp] + [(0, 0, v) for v in ramp] + [(v, v, v) for v in ramp]
    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[1:, :3] = cube + ramps
    palette[1:, 3] = 255
    return palette


@dataclass
class VoxFile:
    """What a .vox file holds: its models (each a (D, H, W) uint8 grid of colour indices, 0 empty)
    and its palette (256, 4) uint8 indexed by colour index."""

    models: list[np.ndarray]
    palette: np.ndarray

    def rgba(self, index: int = 0) -> np.ndarray:
        """Model `index` as colours: (D, H, W, 4) uint8, straight (not premultiplied) RGBA, empty
        cells zero."""
        indices = self.models[index]
        rgba = self.palette[indices]
        rgba[indices == 0] = 0
        return rgba


def _chunks(data: bytes, start: int, end: int, path) -> list[tuple[bytes, bytes, int, int]]:
    """The chunks laid end to end in data[start:end]: (id, content, children start, children end)."""
    chunks, at = [], start
    while at < end:
        if end - at < 12:
            raise NCAError(f"cannot read {path}: a chunk header is cut off")
        cid, n, m = data[at : at + 4], *struct.unpack_from("<ii", data, at + 4)
        if n < 0 or m < 0 or at + 12 + n + m > end:
            raise NCAError(f"cannot read {path}: chunk {cid!r} runs past the end of the file")
        chunks.append((cid, data[at + 12 : at + 12 + n], at + 12 + n, at + 12 + n + m))
        at += 12 + n + m
    return chunks


def _model(size: bytes, xyzi: bytes, path) -> np.ndarray:
    """One model from its SIZE and XYZI contents. -> (D, H, W) uint8 colour indices."""
    if len(size) < 12 or len(xyzi) < 4:
        raise NCAError(f"cannot read {path}: a SIZE or XYZI chunk is too short")
    sx, sy, sz = struct.unpack_from("<iii", size)
    if not all(1 <= s <= MAX_SIDE for s in (sx, sy, sz)):
        raise NCAError(f"cannot read {path}: model size {sx}x{sy}x{sz} is outside 1..{MAX_SIDE} a side")
    (count,) = struct.unpack_from("<i", xyzi)
    if count < 0 or 4 + 4 * count > len(xyzi):
        raise NCAError(f"cannot read {path}: the XYZI chunk claims {count} voxels but holds fewer")
    voxels = np.frombuffer(xyzi, dtype=np.uint8, count=4 * count, offset=4).reshape(count, 4).astype(np.int64)
    x, y, z, c = voxels.T
    if count and (x.max() >= sx or y.max() >= sy or z.max() >= sz):
        raise NCAError(f"cannot read {path}: a voxel lies outside its model's {sx}x{sy}x{sz} size")
    grid = np.zeros((sz, sy, sx), dtype=np.uint8)
    grid[z, y, x] = c
    return grid


def read_vox(path: str | Path) -> VoxFile:
    """Read a .vox file: every model and the palette. Damage of any kind is an NCAError."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise NCAError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) < 8 or data[:4] != b"VOX ":
        raise NCAError(f"cannot read {path}: not a MagicaVoxel file (it does not start with 'VOX ')")
    top = _chunks(data, 8, len(data), path)
    if not top or top[0][0] != b"MAIN":
        raise NCAError(f"cannot read {path}: no MAIN chunk")
    _, _, lo, hi = top[0]
    sizes, models, palette = [], [], default_palette()
    for cid, content, _, _ in _chunks(data, lo, hi, path):
        if cid == b"SIZE":
            sizes.append(content)
        elif cid == b"XYZI":
            if len(sizes) != len(models) + 1:
                raise NCAError(f"cannot read {path}: an XYZI chunk without its SIZE chunk")
            models.append(_model(sizes[-1], content, path))
        elif cid == b"RGBA":
            if len(content) < 1024:
                raise NCAError(f"cannot read {path}: the RGBA palette chunk is too short")
            palette = np.zeros((256, 4), dtype=np.uint8)
            palette[1:] = np.frombuffer(content, dtype=np.uint8, count=1020).reshape(255, 4)
    if not models:
        raise NCAError(f"cannot read {path}: it holds no model")
    return VoxFile(models=models, palette=palette)


def _chunk(cid: bytes, content: bytes, children: bytes = b"") -> bytes:
    return cid + struct.pack("<ii", len(content), len(children)) + content + children


def palette_of(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour indices and a palette for the opaque voxels of (D, H, W, 4) uint8 straight RGBA
    (alpha > 0 is a voxel; a .vox voxel is opaque). At most 255 colours: with more, the most
    frequent ones are kept and every voxel takes the nearest. -> ((D, H, W) uint8, (256, 4) uint8)"""
    solid = rgba[..., 3] > 0
    colours, inverse, counts = np.unique(rgba[solid][:, :3], axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if len(colours) > 255:
        kept = colours[np.argsort(-counts, kind="stable")[:255]]
        distance = ((colours[:, None, :].astype(np.int32) - kept[None].astype(np.int32)) ** 2).sum(-1)
        inverse, colours = distance.argmin(1)[inverse], kept
    indices = np.zeros(rgba.shape[:3], dtype=np.uint8)
    indices[solid] = inverse + 1
    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[1 : 1 + len(colours), :3] = colours
    palette[1:, 3] = 255
    return indices, palette


def vox_bytes(rgba: np.ndarray) -> bytes:
    """A one-model .vox file of a (D, H, W, 4) uint8 straight RGBA grid (alpha > 0 is a voxel)."""
    D, H, W = rgba.shape[:3]
    if max(D, H, W) > MAX_SIDE:
        raise NCAError(f"a .vox model is at most {MAX_SIDE} voxels a side, got {W}x{H}x{D}")
    indices, palette = palette_of(rgba)
    z, y, x = np.nonzero(indices)
    voxels = np.stack([x, y, z, indices[z, y, x]], axis=1).astype(np.uint8)
    children = (_chunk(b"SIZE", struct.pack("<iii", W, H, D))
                + _chunk(b"XYZI", struct.pack("<i", len(voxels)) + voxels.tobytes())
                + _chunk(b"RGBA", palette[1:].tobytes() + bytes(4)))
    return b"VOX " + struct.pack("<i", VERSION) + _chunk(b"MAIN", b"", children)


def write_vox(path: str | Path, rgba: np.ndarray) -> None:
    """Write a (D, H, W, 4) uint8 straight RGBA grid as a one-model .vox file, atomically."""
    data = vox_bytes(rgba)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
