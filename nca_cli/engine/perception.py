"""Perception: what a cell senses of its neighbourhood, as a set of kernels over the neighbourhood.

The Growing-NCA perception is three 3x3 kernels applied to every channel: the identity (the cell's
own state) and Sobel gradients along x and y, optionally turned by an angle. Outputs are band-major:
all C channels' identities, then all C x-gradients, then all C y-gradients (the order of the
Distill demo's weights). On a 3D grid it is four 3x3x3 kernels: identity, x, y, z gradients.
"""

from __future__ import annotations

import functools
import math

import torch

from .grid import neighbourhood_offsets, pad_grid


def sobel_bank(dims: int, c, s, axis: str = "z", device=None) -> torch.Tensor:
    """Identity and Sobel gradient kernels of a `dims`-dimensional grid, the gradient vector turned
    by the angle whose cosine and sine are c and s (floats, or 0-d tensors so the angle can be a
    graph input). 2D: (3, 3, 3) identity, x (columns), y (rows), the article's rotation
    kx' = c kx - s ky, ky' = s kx + c ky. 3D: (4, 3, 3, 3) identity, x (W), y (H), z (D), turned
    about `axis` (x -> y about z, y -> z about x, z -> x about y). Applied as cross-correlation;
    each gradient of a unit ramp is 1.
    """
    smooth = torch.tensor([1.0, 2.0, 1.0], device=device)
    slope = torch.tensor([-1.0, 0.0, 1.0], device=device)
    if dims == 2:
        gx, gy = torch.outer(smooth, slope) / 8.0, torch.outer(slope, smooth) / 8.0
        identity = torch.zeros(3, 3, device=device)
        identity[1, 1] = 1.0
        return torch.stack([identity, c * gx - s * gy, s * gx + c * gy])
    grads = {"z": torch.einsum("i,j,k->ijk", slope, smooth, smooth) / 32.0,
             "y": torch.einsum("i,j,k->ijk", smooth, slope, smooth) / 32.0,
             "x": torch.einsum("i,j,k->ijk", smooth, smooth, slope) / 32.0}
    first, second = {"z": ("x", "y"), "x": ("y", "z"), "y": ("z", "x")}[axis]
    a, b = grads[first], grads[second]
    grads[first], grads[second] = c * a - s * b, s * a + c * b
    identity = torch.zeros(3, 3, 3, device=device)
    identity[1, 1, 1] = 1.0
    return torch.stack([identity, grads["x"], grads["y"], grads["z"]])


def perception_kernels(angle: float = 0.0, device=None) -> torch.Tensor:
    """The three 3x3 perception kernels (identity, Sobel x, Sobel y), Sobel rotated by `angle` radians.

    Returns (3, 3, 3): kernel, row (dy), column (dx); applied as cross-correlation.
    """
    return sobel_bank(2, math.cos(angle), math.sin(angle), device=device)


def perception_kernels_3d(angle: float = 0.0, axis: str = "z", device=None) -> torch.Tensor:
    """The four 3x3x3 perception kernels of a voxel grid (D, H, W), gradients turned by `angle`
    radians about `axis`. Returns (4, 3, 3, 3)."""
    return sobel_bank(3, math.cos(angle), math.sin(angle), axis, device)


@functools.lru_cache(maxsize=64)
def tap_kernels(angle: float, device: torch.device, dims: int = 2, axis: str = "z") -> torch.Tensor:
    """The Sobel perception for an angle in degrees as a (bands, taps) matrix, made once per angle and
    device (as an ordinary tensor even if first asked for under inference mode, so training can use it)."""
    with torch.inference_mode(False):
        if dims == 3:
            kernels = perception_kernels_3d(math.radians(angle), axis, device)
        else:
            kernels = perception_kernels(math.radians(angle), device)
        return kernels.reshape(kernels.shape[0], -1)


def perceive(x: torch.Tensor, padding: str = "zero", angle: float = 0.0, axis: str = "z") -> torch.Tensor:
    """Dense Sobel perception of every cell, gradients turned by `angle` degrees (about `axis` on a
    3D grid): (B, *S, C) -> (B, *S, bands*C)."""
    kernels = tap_kernels(angle, x.device, x.ndim - 2, axis)  # (bands, taps)
    xp = pad_grid(x, padding)
    shape = x.shape[1:-1]
    bands = [torch.zeros_like(x) for _ in range(kernels.shape[0])]
    for t, offset in enumerate(neighbourhood_offsets(len(shape))):
        shifted = xp[(slice(None),) + tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, shape))]
        for b, kernel in enumerate(kernels):
            if kernel[t] != 0:
                bands[b] = bands[b] + kernel[t] * shifted
    return torch.cat(bands, dim=-1)
