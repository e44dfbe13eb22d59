"""Baselines: what can be done with the surviving pixels without learning anything.

Both are online, like the NCA: each frame they receive the frame (only its surviving pixels are
read) and its mask, and return their estimate of the whole frame.

- last seen: each pixel holds the last value observed there; pixels never observed take the
  current frame's mean of observed values.
- interpolation: a normalised Gaussian-weighted average of the observations within a radius
  (3 sigma_space pixels) and a time window of past frames (3 sigma_time frames, this one included):
  sum(w * observed value) / sum(w * observed), with Gaussian weights w in space and time. Causal,
  as the NCA is; its two sigmas are chosen on a training clip (`tune_interpolation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch

from ..errors import InvalidOption
from .clips import Clip
from .masks import frame_masks
from .scores import mse, psnr_of_mse

# The grid searched for the interpolation's parameters (pixels, frames).
SIGMA_SPACE_GRID = (0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
SIGMA_TIME_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
TUNE_SEED = 1


class LastSeen:
    """Hold each pixel's last observed value. Call with frame (H, W, P) and mask (H, W) bool -> (H, W, P)."""

    name = "last_seen"

    def __init__(self):
        self.held: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None
        self.fill = 0.5  # before any pixel has been observed

    def __call__(self, frame: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.held is None:
            self.held, self.seen = torch.zeros_like(frame), torch.zeros_like(mask)
        observed = mask[..., None]
        self.held = torch.where(observed, frame, self.held)
        self.seen = self.seen | mask
        if mask.any():
            self.fill = frame[mask].mean(0)  # (P,)
        return torch.where(self.seen[..., None], self.held, self.fill)


@dataclass(frozen=True)
class InterpolationParams:
    """Spread of the interpolation's Gaussian weights: sigma_space in pixels, sigma_time in frames."""

    sigma_space: float
    sigma_time: float

    def __post_init__(self):
        for name, value in (("sigma_space", self.sigma_space), ("sigma_time", self.sigma_time)):
            if not (math.isfinite(value) and 0 < value <= 100):
                raise InvalidOption(name, f"must be above 0 and at most 100, got {value:g}")

    @property
    def window(self) -> int:
        """Frames averaged: this one and the past ones within 3 sigma_time."""
        return int(3 * self.sigma_time) + 1

    def to_dict(self) -> dict:
        return {"sigma_space": self.sigma_space, "sigma_time": self.sigma_time}


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """1D Gaussian weights over -3 sigma .. 3 sigma (at least one tap each side), peak 1. -> (2r+1,)"""
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return torch.exp(-0.5 * (x / sigma) ** 2)


def blur_matrix(n: int, kernel: torch.Tensor) -> torch.Tensor:
    """The 1D convolution of a length-n signal with `kernel` (zeros outside) as an (n, n) matrix."""
    r = len(kernel) // 2
    offsets = torch.arange(n)[None, :] - torch.arange(n)[:, None]  # column - row
    inside = offsets.abs() <= r
    return torch.where(inside, kernel[(offsets + r).clamp(0, len(kernel) - 1)], torch.zeros(()))


def blur(planes: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable convolution of (K, H, W) with a 1D kernel along both axes, zeros outside, as two
    matrix products (faster here than small convolutions). -> (K, H, W)"""
    _, H, W = planes.shape
    rows, cols = blur_matrix(H, kernel).to(planes), blur_matrix(W, kernel).to(planes)
    return rows @ planes @ cols.T


class Interpolation:
    """The normalised Gaussian average of observations over space and past frames. Call with frame
    (H, W, P) and mask (H, W) bool -> (H, W, P)."""

    name = "interpolation"

    def __init__(self, params: InterpolationParams):
        self.params = params
        self.kernel = gaussian_kernel(params.sigma_space)
        lags = torch.arange(params.window, dtype=torch.float32)
        self.time_weights = torch.exp(-0.5 * (lags / params.sigma_time) ** 2)  # (window,), by lag
        self.ring: torch.Tensor | None = None  # blurred (window, P + 1, H, W), frame t at t % window
        self.frames = 0
        self.fill: torch.Tensor | None = None  # (P, 1, 1)

    def __call__(self, frame: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(frame.dtype)
        planes = torch.cat([(frame * m[..., None]).permute(2, 0, 1), m[None]])  # (P + 1, H, W)
        window = self.params.window
        if self.ring is None:
            self.ring = torch.zeros((window, *planes.shape), device=planes.device)
            self.fill = torch.full((len(planes) - 1, 1, 1), 0.5, device=planes.device)
        self.ring[self.frames % window] = blur(planes, self.kernel.to(planes.device))
        # Slot s holds the frame of lag (t - s) mod window; slots not yet written hold zeros.
        lags = (self.frames - torch.arange(window)) % window
        weights = self.time_weights[lags].to(planes.device)
        total = torch.tensordot(weights, self.ring, dims=1)  # (P + 1, H, W)
        self.frames += 1
        numerator, denominator = total[:-1], total[-1:]
        if bool(denominator.sum() > 0):  # where no observation is within reach: the window's mean
            self.fill = numerator.sum((1, 2), keepdim=True) / denominator.sum()
        estimate = torch.where(denominator > 1e-6, numerator / denominator.clamp_min(1e-6), self.fill)
        return estimate.permute(1, 2, 0).clamp(0.0, 1.0)


def clip_error(method, clip: Clip, keep: float, fixed: bool = False, seed: int = 0) -> float:
    """Mean squared error of an online method over a clip's frames, with the masks of `seed`."""
    masks = frame_masks(len(clip), clip.size, keep, fixed, seed)
    errors = [mse(method(clip.frame(t), mask), clip.frame(t)) for t, mask in enumerate(masks)]
    return float(sum(errors) / len(errors))


def tune_interpolation(clip: Clip, keep: float, fixed: bool = False, seed: int = TUNE_SEED) -> tuple[InterpolationParams, float]:
    """The interpolation's sigmas from the grid that give the best PSNR over `clip` (its full frames
    are the reference) at this `keep` and mask kind, with masks of their own seed (not those that
    will be scored). Returns them and that PSNR (dB)."""
    best, best_error = None, math.inf
    for sigma_space in SIGMA_SPACE_GRID:
        for sigma_time in SIGMA_TIME_GRID:
            params = InterpolationParams(sigma_space, sigma_time)
            error = clip_error(Interpolation(params), clip, keep, fixed, seed)
            if error < best_error:
                best, best_error = params, error
    return best, psnr_of_mse(best_error)


def run_method(method, frames: Iterable[torch.Tensor], masks: Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    """Feed frames (H, W, P) and their masks (H, W) to an online method; yield its estimates (H, W, P)."""
    for frame, mask in zip(frames, masks):
        yield method(frame, mask)
