"""Pictures of voxel bodies: solid voxels drawn as shaded cubes, seen by a camera orbiting the body.

Orthographic, from ELEVATION degrees above the horizon, the camera at `azimuth` degrees about the
vertical axis (D). Only faces that can be seen are drawn: those of solid voxels (alpha above
OCCUPIED) whose neighbour on that side is empty and that face the camera. Each is sampled densely
in screen space and depth-tested with one scatter into a z-buffer, all in torch, so a frame costs
a few milliseconds for a body of a few thousand voxels. Faces are lit by a light that moves with
the camera (Lambert plus ambient), with slightly darker voxel edges so that the cubes read.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .metrics import OCCUPIED

ELEVATION = 25.0  # degrees the camera looks down
MIN_SIDE = 256  # pixels: the default scale makes frames at least this wide
AMBIENT, EDGE_SHADE, EDGE_WIDTH = 0.45, 0.82, 0.07
BACKGROUND = 255
# The six face directions in world coordinates (x = W, y = H, z = D up) and their grid axis.
DIRECTIONS = [(axis, sign) for axis in range(3) for sign in (1, -1)]


def frame_shape(grid: tuple[int, int, int], scale: float) -> tuple[int, int]:
    """Pixels (height, width) of a frame that shows a (D, H, W) grid from every azimuth."""
    D, H, W = grid
    across = math.hypot(H, W)
    e = math.radians(ELEVATION)
    return math.ceil((D * math.cos(e) + across * math.sin(e)) * scale) + 4, math.ceil(across * scale) + 4


def default_scale(grid: tuple[int, int, int]) -> int:
    """Pixels per voxel so that a frame of the grid is at least MIN_SIDE pixels wide."""
    return max(1, math.ceil(MIN_SIDE / math.hypot(grid[1], grid[2])))


def camera(azimuth: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit vectors (x, y, z) in world coordinates: towards the camera, screen right, screen up."""
    a, e = math.radians(azimuth), math.radians(ELEVATION)
    towards = torch.tensor([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    right = torch.tensor([-math.sin(a), math.cos(a), 0.0])
    return towards, right, torch.linalg.cross(towards, right)


@functools.lru_cache(maxsize=16)
def face_samples(k: int) -> torch.Tensor:
    """A k x k grid of points over a unit face, (k*k, 2) in -0.5..0.5."""
    t = (torch.arange(k, dtype=torch.float32) + 0.5) / k - 0.5
    return torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)


def exposed_faces(solid: torch.Tensor, axis: int, sign: int) -> torch.Tensor:
    """Solid voxels of (D, H, W) whose neighbour along world `axis` (0 x=W, 1 y=H, 2 z=D) in
    direction `sign` is empty or off the grid. -> (N, 3) voxel indices (d, h, w)"""
    dim = 2 - axis
    padded = torch.nn.functional.pad(solid, (1, 1, 1, 1, 1, 1))
    neighbour = padded.roll(-sign, dim)[1:-1, 1:-1, 1:-1]
    return (solid & ~neighbour).nonzero()


def visible_faces(solid: torch.Tensor, colours: torch.Tensor, towards: torch.Tensor, right: torch.Tensor,
                  up: torch.Tensor, light: torch.Tensor, k: int):
    """The faces the camera can see, each sampled k x k times, in screen units about the grid's
    centre: per sample its screen x (right), y (up) and depth (F, k*k) each, and per face its lit
    colour (F, 3) float. Faces are taken direction by direction, three of the six at most."""
    D, H, W = solid.shape
    centre = torch.tensor([W, H, D], dtype=torch.float32) / 2
    uv = face_samples(k)
    screen = torch.stack([right, up, -towards], 1)  # world -> (x, y, depth)
    xs, lit_colours = [], []
    for axis, sign in DIRECTIONS:
        normal = torch.zeros(3)
        normal[axis] = sign
        if float(normal @ towards) <= 1e-6:
            continue
        found = exposed_faces(solid, axis, sign)  # (N, 3) as (d, h, w)
        a, b = [i for i in range(3) if i != axis]
        offsets = torch.zeros(len(uv), 3)
        offsets[:, a], offsets[:, b] = uv[:, 0], uv[:, 1]
        centres = found.flip(1).float() + 0.5 + normal * 0.5 - centre  # world (x, y, z)
        xs.append((centres @ screen)[:, None, :] + (offsets @ screen)[None])  # (N, k*k, 3)
        lit = AMBIENT + (1 - AMBIENT) * max(0.0, float(normal @ light))
        lit_colours.append(colours[found[:, 0], found[:, 1], found[:, 2]].float() * lit)
    if not xs:
        return torch.zeros(0, len(uv), 3), torch.zeros(0, 3)
    return torch.cat(xs), torch.cat(lit_colours)


def render_voxels(colours: np.ndarray, solid: np.ndarray, azimuth: float, scale: float) -> np.ndarray:
    """One view of a voxel body. colours: (D, H, W, 3) uint8, solid: (D, H, W) bool; azimuth in
    degrees; scale in pixels per voxel. -> (height, width, 3) uint8 of frame_shape(grid, scale)."""
    height, width = frame_shape(tuple(solid.shape), scale)
    towards, right, up = camera(azimuth)
    light = towards * 0.55 + up * 0.7 - right * 0.35
    k = max(2, math.ceil(scale) + 1)  # sample spacing under a pixel on any face the camera sees
    screen, lit = visible_faces(torch.from_numpy(np.ascontiguousarray(solid)),
                                torch.from_numpy(np.ascontiguousarray(colours)), towards, right, up,
                                light / light.norm(), k)
    if not len(lit):
        return np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    # Every sample lands on the frame (frame_shape bounds the grid from any azimuth): clamping
    # only guards rounding at the border.
    col = (width / 2 + screen[..., 0] * scale).long().clamp_(0, width - 1).flatten()
    row = (height / 2 - screen[..., 1] * scale).long().clamp_(0, height - 1).flatten()
    count = col.numel()
    # One integer key per sample, nearest first: a scatter of minima picks each pixel's front sample.
    key = ((screen[..., 2].flatten() + 1e3) * 1e3).long() * count + torch.arange(count)
    empty = torch.iinfo(torch.long).max
    front = torch.full((height * width,), empty).scatter_reduce_(0, row * width + col, key, "amin")
    covered = front != empty
    sample = torch.where(covered, front % count, 0)
    edge = 1 - (1 - EDGE_SHADE) * (face_samples(k).abs().amax(1) > 0.5 - EDGE_WIDTH).float()  # (k*k,)
    sample_rgb = (lit[:, None, :] * edge[None, :, None]).clamp_(0, 255).round_().to(torch.uint8).reshape(-1, 3)
    frame = torch.where(covered[:, None], sample_rgb[sample], torch.tensor(BACKGROUND, dtype=torch.uint8))
    return frame.reshape(height, width, 3).numpy()


def voxel_colours(state: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """What the renderer draws of states (B, D, H, W, C): colours composited over white (B, D, H, W, 3)
    uint8 (faint voxels look pale, as on a 2D grid) and the solid voxels (B, D, H, W) bool."""
    from ..engine import render_rgb

    return render_rgb(state).cpu().numpy(), (state[..., 3] > OCCUPIED).cpu().numpy()


def project(cells: np.ndarray, grid: tuple[int, int, int], azimuth: float, scale: float) -> np.ndarray:
    """Where voxel centres (N, 3) given as (d, h, w) appear on a frame of render_voxels. -> (N, 2)
    pixel (row, col), floats."""
    height, width = frame_shape(grid, scale)
    towards, right, up = camera(azimuth)
    centre = np.array([grid[2], grid[1], grid[0]], dtype=np.float32) / 2
    world = cells[:, ::-1].astype(np.float32) + 0.5 - centre
    return np.stack([height / 2 - world @ up.numpy() * scale, width / 2 + world @ right.numpy() * scale], 1)


VIEW_AZIMUTH = 30.0  # degrees: the three-quarter view of still pictures of a body (previews, plots)


def body_view(state: torch.Tensor, cells: np.ndarray | None = None, scale: float | None = None):
    """A still picture of one state (D, H, W, C) from VIEW_AZIMUTH, and where the voxel centres
    `cells` (N, 3) as (d, h, w) appear on it. -> ((height, width, 3) uint8, (N, 2) pixel row, col)"""
    grid = tuple(state.shape[:3])
    scale = scale or default_scale(grid)
    rgb, solid = voxel_colours(state[None])
    picture = render_voxels(rgb[0], solid[0], VIEW_AZIMUTH, scale)
    points = project(cells, grid, VIEW_AZIMUTH, scale) if cells is not None else np.zeros((0, 2))
    return picture, points
