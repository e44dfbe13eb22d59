"""Meshes (.obj, .stl, .ply, .glb) turned into voxel bodies with trimesh.

The surface is sampled densely (many points per voxel face), every voxel a sample falls in is
solid and takes the mean colour of its samples; then everything the outside cannot reach through
empty voxels (6-connected) is filled, taking the colour of the nearest solid voxels. So closed
meshes become solid bodies, and open or non-manifold ones still give their surface voxels.
Colour comes from the texture where there is one, else vertex colours, face colours, the
material's colour, or DEFAULT_COLOUR.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NCAError

MESH_SUFFIXES = (".obj", ".stl", ".ply", ".glb")
DEFAULT_COLOUR = (200, 200, 200)
SAMPLES_PER_VOXEL_FACE = 24  # surface samples per voxel face's area: dense enough to hit every voxel
# What trimesh's readers raise on files they cannot parse (ImportError: text in no known encoding,
# which trimesh would guess with charset_normalizer, an optional package).
MESH_ERRORS = (ValueError, KeyError, IndexError, TypeError, AttributeError, OSError, EOFError, struct.error,
               UnicodeDecodeError, NotImplementedError, ImportError)
# glTF and OBJ meshes are usually modelled Y-up, STL and PLY (3D printing, scans) Z-up.
Y_UP = (".glb", ".obj")


def read_mesh(path: str | Path):
    """One triangle mesh from a file (a scene's meshes joined), turned so that its third
    coordinate is up. An NCAError for anything that is not a mesh with area."""
    import trimesh

    path = Path(path)
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except MESH_ERRORS:
        raise NCAError(f"cannot read mesh {path}: not a readable {path.suffix.lower()[1:].upper()} file") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise NCAError(f"cannot voxelise {path}: it holds no triangles")
    if not np.isfinite(mesh.vertices).all() or mesh.area <= 0:
        raise NCAError(f"cannot voxelise {path}: its triangles have no area")
    if path.suffix.lower() in Y_UP:  # (x, y up, z) -> (x, -z, y up): a right-handed turn
        mesh.vertices = np.asarray(mesh.vertices)[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
    return mesh


def surface_colours(mesh, faces: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
    """Colours of surface points given by face index (N,) and barycentric coordinates (N, 3).
    -> (N, 3) uint8"""
    from trimesh.visual.color import uv_to_interpolated_color

    visual = mesh.visual
    if visual.kind == "texture":
        material = visual.material
        image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
        if visual.uv is not None and image is not None:
            uv = (np.asarray(visual.uv)[mesh.faces[faces]] * barycentric[..., None]).sum(1)
            return uv_to_interpolated_color(uv, image)[:, :3]
        colour = np.asarray(material.main_color)[:3]
        return np.broadcast_to(colour, (len(faces), 3)).astype(np.uint8)
    if visual.kind == "vertex":
        corners = np.asarray(visual.vertex_colors)[mesh.faces[faces], :3].astype(np.float64)
        return (corners * barycentric[..., None]).sum(1).round().clip(0, 255).astype(np.uint8)
    if visual.kind == "face":
        return np.asarray(visual.face_colors)[faces, :3]
    return np.broadcast_to(np.array(DEFAULT_COLOUR, dtype=np.uint8), (len(faces), 3))


def voxel_grid_shape(mesh, size: int) -> tuple[tuple[int, int, int], float, np.ndarray]:
    """The (D, H, W) grid that fits the mesh's longest side in `size` voxels, its pitch and the
    corner of the grid in mesh coordinates (x, y, z)."""
    lo, hi = mesh.bounds
    pitch = float((hi - lo).max()) / size
    counts = np.maximum(1, np.ceil((hi - lo) / pitch - 1e-6).astype(int))  # x, y, z
    corner = (lo + hi) / 2 - counts * pitch / 2
    return (int(counts[2]), int(counts[1]), int(counts[0])), pitch, corner


def _surface_voxels(mesh, shape, pitch: float, corner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Surface samples binned into voxels: colour sums (D, H, W, 3) and sample counts (D, H, W)."""
    from trimesh.sample import sample_surface

    count = int(min(4_000_000, max(10_000, SAMPLES_PER_VOXEL_FACE * mesh.area / pitch ** 2)))
    points, faces, barycentric = sample_surface(mesh, count, return_barycentric=True, seed=0)
    colours = surface_colours(mesh, faces, barycentric).astype(np.float64)
    index = np.floor((points - corner) / pitch).astype(np.int64)[:, ::-1]  # (z, y, x)
    index = np.clip(index, 0, np.array(shape) - 1)
    flat = np.ravel_multi_index(index.T, shape)
    cells = int(np.prod(shape))
    hits = np.bincount(flat, minlength=cells).reshape(shape)
    sums = np.stack([np.bincount(flat, weights=colours[:, k], minlength=cells) for k in range(3)], -1)
    return sums.reshape(*shape, 3), hits


def fill_inside(surface: torch.Tensor) -> torch.Tensor:
    """Voxels the outside cannot reach through empty voxels (face neighbours), the surface
    included. (D, H, W) bool -> (D, H, W) bool"""
    free = F.pad(~surface, (1, 1, 1, 1, 1, 1), value=True)
    outside = torch.zeros_like(free)
    outside[0, 0, 0] = True
    while True:
        grown = outside.clone()
        for dim in range(3):
            grown |= torch.roll(outside, 1, dim) | torch.roll(outside, -1, dim)
        grown &= free
        if torch.equal(grown, outside):
            return ~outside[1:-1, 1:-1, 1:-1]
        outside = grown


def spread_colours(rgb: torch.Tensor, known: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
    """Colour the body's voxels that have none from their coloured neighbours, layer by layer
    inwards. rgb (D, H, W, 3) float, known/body (D, H, W) bool -> (D, H, W, 3)"""
    rgb, known = rgb.clone(), known.clone()
    while bool((body & ~known).any()):
        total = F.avg_pool3d((rgb * known[..., None]).permute(3, 0, 1, 2)[None], 3, 1, 1)[0].permute(1, 2, 3, 0)
        weight = F.avg_pool3d(known[None, None].float(), 3, 1, 1)[0, 0]
        fresh = body & ~known & (weight > 0)
        if not bool(fresh.any()):
            break
        rgb[fresh] = total[fresh] / weight[fresh][:, None]
        known |= fresh
    return rgb


def voxelise_mesh(path: str | Path, size: int) -> np.ndarray:
    """A mesh file as a solid voxel body whose longest side is `size` voxels.
    -> (D, H, W, 4) float32 straight RGBA in [0, 1] (D up)."""
    mesh = read_mesh(path)
    shape, pitch, corner = voxel_grid_shape(mesh, size)
    sums, hits = _surface_voxels(mesh, shape, pitch, corner)
    surface = torch.from_numpy(hits > 0)
    body = fill_inside(surface)
    rgb = torch.from_numpy(sums / np.maximum(hits, 1)[..., None] / 255.0).float()
    rgb = spread_colours(rgb, surface, body)
    return torch.cat([rgb * body[..., None], body[..., None].float()], -1).numpy()
