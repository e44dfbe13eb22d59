"""Grid operations on channels-last states (B, *S, C) with any number of spatial dims S.

Edges are "zero" (cells outside the grid are empty) or "wrap" (the grid is a torus). A cell's
neighbourhood is the 3 x 3 (x 3 ...) block around it.
"""

from __future__ import annotations

import functools
import itertools

import torch
import torch.nn.functional as F


def spatial(x: torch.Tensor) -> tuple[slice, ...]:
    """Index of the interior of a grid padded by one cell: [:, 1:-1, 1:-1, ...] over the spatial dims."""
    return (slice(None),) + (slice(1, -1),) * (x.ndim - 2)


def pad_grid(x: torch.Tensor, padding: str) -> torch.Tensor:
    """Pad every spatial dim of (B, *S, C) by one cell: zeros, or wrap around. -> (B, *(S+2), C)"""
    dims = x.ndim - 2
    if padding == "wrap":
        for dim in range(1, dims + 1):
            n = x.shape[dim]
            x = torch.cat([x.narrow(dim, n - 1, 1), x, x.narrow(dim, 0, 1)], dim=dim)
        return x
    return F.pad(x, (0, 0) + (1, 1) * dims)


@torch.no_grad()
def neighbourhood_max(padded: torch.Tensor) -> torch.Tensor:
    """Maximum over each cell's neighbourhood of a padded (B, *(S+2)) grid, separably. -> (B, *S)"""
    for dim in range(1, padded.ndim):
        n = padded.shape[dim] - 2
        padded = torch.maximum(torch.maximum(padded.narrow(dim, 0, n), padded.narrow(dim, 1, n)),
                               padded.narrow(dim, 2, n))
    return padded


@torch.no_grad()
def alive_mask(x: torch.Tensor, threshold: float = 0.1, padding: str = "zero") -> torch.Tensor:
    """Cells with a living neighbourhood: neighbourhood max of alpha > threshold. (B, *S, C) -> (B, *S) bool"""
    return neighbourhood_max(pad_grid(x[..., 3:4].detach(), padding)[..., 0]) > threshold


def neighbourhood_offsets(dims: int) -> list[tuple[int, ...]]:
    """The offsets of a cell's neighbourhood, row-major ((-1, -1), (-1, 0), ... for two dims)."""
    return list(itertools.product((-1, 0, 1), repeat=dims))


def flat_taps(padded_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Offsets of a cell's neighbourhood from the cell in a flattened grid of `padded_shape` (the
    spatial shape, one cell of padding included), in neighbourhood_offsets order. (3**dims,)"""
    return _flat_taps(tuple(padded_shape[1:]), device)  # the first dim's length does not matter


@functools.lru_cache(maxsize=64)
def _flat_taps(inner_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    strides = [1] * (len(inner_shape) + 1)
    for i in range(len(inner_shape) - 1, -1, -1):
        strides[i] = strides[i + 1] * inner_shape[i]
    offsets = [sum(o * s for o, s in zip(offset, strides)) for offset in neighbourhood_offsets(len(strides))]
    with torch.inference_mode(False):  # an ordinary tensor even if first asked for under inference mode
        return torch.tensor(offsets, device=device)


def living_box(alive: torch.Tensor, padding: str) -> tuple[tuple[int, int], ...] | None:
    """Per spatial dim, the range lo:hi covering every living cell of (B, *S) plus one cell around.

    None when no smaller region can stand in for the grid: nothing lives, the box is the whole
    grid, or (wrap-around edges) the box reaches an edge, where neighbours wrap to the far side.
    """
    shape = alive.shape[1:]
    where = alive.any(0).nonzero()  # (cells, dims): one pass, one synchronisation below
    if len(where) == 0:
        return None
    bounds = torch.stack([where.min(0).values - 1, where.max(0).values + 2]).tolist()
    box = []
    for lo, hi, n in zip(*bounds, shape):
        if padding == "wrap" and (lo < 0 or hi > n):
            return None
        box.append((max(lo, 0), min(hi, n)))
    if all(hi - lo == n for (lo, hi), n in zip(box, shape)):
        return None
    return tuple(box)


def grow_box(box: tuple[tuple[int, int], ...], shape: tuple[int, ...]) -> tuple[tuple[int, int], ...] | None:
    """The box one cell larger on every side, or None where that leaves the grid."""
    grown = tuple((lo - 1, hi + 1) for lo, hi in box)
    return grown if all(lo >= 0 and hi <= n for (lo, hi), n in zip(grown, shape)) else None


def crop(x: torch.Tensor, box: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """The part of (B, *S, ...) inside a box of per-dim ranges."""
    return x[(slice(None),) + tuple(slice(lo, hi) for lo, hi in box)]


def uncrop(region: torch.Tensor, box: tuple[tuple[int, int], ...], shape: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad a cropped channels-last region (B, *box, C) back to the spatial `shape`."""
    pads = [0, 0]
    for (lo, hi), n in reversed(list(zip(box, shape))):
        pads += [lo, n - hi]
    return F.pad(region, pads)
