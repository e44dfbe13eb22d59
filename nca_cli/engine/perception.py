"""Perception: what a cell senses of its neighbourhood, as a set of kernels over the neighbourhood.

The Growing-NCA perception is three 3x3 kernels applied to every channel: the identity (the cell's
own state) and Sobel gradients along x and y, optionally turned by an angle. Outputs are band-major:
all C channels' identities, then all C x-gradients, then all C y-gradients (the order of the
Distill demo's weights).
"""

from __future__ import annotations

import functools
import math

import torch

from .grid import neighbourhood_offsets, pad_grid


def perception_kernels(angle: float = 0.0, device=None) -> torch.Tensor:
    """The three 3x3 perception kernels (identity, Sobel x, Sobel y), Sobel rotated by `angle` radians.

    Returns (3, 3, 3): kernel, row (dy), column (dx); applied as cross-correlation.
    Rotation follows the article: kx' = cos(a) kx - sin(a) ky, ky' = sin(a) kx + cos(a) ky.
    """
    identity = torch.zeros(3, 3, device=device)
    identity[1, 1] = 1.0
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=device) / 8.0
    sobel_y = sobel_x.T
    c, s = math.cos(angle), math.sin(angle)
    return torch.stack([identity, c * sobel_x - s * sobel_y, s * sobel_x + c * sobel_y])


@functools.lru_cache(maxsize=64)
def tap_kernels(angle: float, device: torch.device) -> torch.Tensor:
    """perception_kernels for an angle in degrees as a (bands, taps) matrix, made once per angle and
    device (as an ordinary tensor even if first asked for under inference mode, so training can use it)."""
    with torch.inference_mode(False):
        kernels = perception_kernels(math.radians(angle), device)
        return kernels.reshape(kernels.shape[0], -1)


def perceive(x: torch.Tensor, padding: str = "zero", angle: float = 0.0) -> torch.Tensor:
    """Dense perception of every cell, gradients turned by `angle` degrees: (B, *S, C) -> (B, *S, bands*C)."""
    kernels = tap_kernels(angle, x.device)  # (bands, taps)
    xp = pad_grid(x, padding)
    shape = x.shape[1:-1]
    bands = [torch.zeros_like(x) for _ in range(kernels.shape[0])]
    for t, offset in enumerate(neighbourhood_offsets(len(shape))):
        shifted = xp[(slice(None),) + tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, shape))]
        for b, kernel in enumerate(kernels):
            if kernel[t] != 0:
                bands[b] = bands[b] + kernel[t] * shifted
    return torch.cat(bands, dim=-1)
