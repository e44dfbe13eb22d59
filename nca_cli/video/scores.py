"""Scores against the full source frames: PSNR and SSIM per frame and over the whole clip.

PSNR is 10 log10(1 / MSE) in dB for values in [0, 1] (capped at 100 dB for a perfect frame, so
that it stays a JSON number); the clip's PSNR is taken from the MSE over all its frames. SSIM is
scikit-image's (7 x 7 windows, data range 1, colour channels averaged); the clip's SSIM is the mean
over frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


MAX_PSNR = 100.0


def mse(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean squared error of two (H, W, P) frames in [0, 1]."""
    return float((estimate.float() - truth.float()).square().mean())


def psnr_of_mse(error: float) -> float:
    """dB for values in [0, 1]; MAX_PSNR for no error."""
    return MAX_PSNR if error <= 10 ** (-MAX_PSNR / 10) else -10.0 * math.log10(error)


def ssim(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """scikit-image's structural similarity of two (H, W, P) frames in [0, 1]."""
    from skimage.metrics import structural_similarity

    a = estimate.detach().cpu().double().numpy()
    b = truth.detach().cpu().double().numpy()
    if a.shape[-1] == 1:
        return float(structural_similarity(a[..., 0], b[..., 0], data_range=1.0))
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1))


@dataclass
class ScoreTrack:
    """Per-frame MSE, PSNR and SSIM of one method over a clip."""

    mse: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    with_ssim: bool = True

    def add(self, estimate: torch.Tensor, truth: torch.Tensor) -> None:
        """Score one frame: (H, W, P) estimate against the (H, W, P) source."""
        error = mse(estimate, truth)
        self.mse.append(error)
        self.psnr.append(psnr_of_mse(error))
        if self.with_ssim:
            self.ssim.append(ssim(estimate, truth))

    @property
    def overall_psnr(self) -> float:
        return psnr_of_mse(float(np.mean(self.mse))) if self.mse else float("nan")

    @property
    def overall_ssim(self) -> float | None:
        return float(np.mean(self.ssim)) if self.ssim else None

    def to_dict(self) -> dict:
        return {"psnr": round(self.overall_psnr, 3), "ssim": _rounded(self.overall_ssim),
                "per_frame": {"psnr": [round(v, 3) for v in self.psnr], "ssim": [round(v, 4) for v in self.ssim]}}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
