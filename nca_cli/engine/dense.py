"""The dense formulation of a step: every cell computed with convolutions, channels-first.

This is the plain way to write a Growing-NCA step in PyTorch (per-channel perception filters as one
convolution through a reshape, two 1x1 convolutions, every cell computed). It is what the ONNX
export runs (the sparse engine's gathers do not export) and what `nca bench` times the engine
against. Both share the weights of an NCA module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .nca import NCA


def sobel_kernels(angle: torch.Tensor) -> torch.Tensor:
    """Identity and Sobel x, y turned by `angle` radians (a tensor, so it can be a graph input). -> (3, 3, 3)"""
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=angle.device) / 8.0
    identity = torch.zeros(3, 3, device=angle.device)
    identity[1, 1] = 1.0
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([identity, c * sobel_x - s * sobel_x.T, s * sobel_x + c * sobel_x.T])


class DenseStep(nn.Module):
    """One CA step over every cell of a channels-first state (B, C, H, W), with the NCA's weights."""

    def __init__(self, model: NCA):
        super().__init__()
        self.model = model

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad H and W of (B, K, H, W) by one cell as the model's edges say (written with cat so it exports)."""
        if self.model.config.padding == "wrap":
            x = torch.cat([x[:, :, -1:], x, x[:, :, :1]], dim=2)
            return torch.cat([x[:, :, :, -1:], x, x[:, :, :, :1]], dim=3)
        return F.pad(x, (1, 1, 1, 1))

    def alive(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W) bool: the 3x3 max of alpha above the threshold."""
        return F.max_pool2d(self.pad(x[:, 3:4]), 3, stride=1) > self.model.config.alive_threshold

    def forward(self, x: torch.Tensor, fire: torch.Tensor, angle: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, H, W); fire: (B, H, W), 1 (or True) where a cell updates; angle: radians () or None."""
        B, C, H, W = x.shape
        m = self.model
        angle = torch.zeros((), device=x.device) if angle is None else angle
        kernels = sobel_kernels(angle)[:, None]  # (3, 1, 3, 3)
        pre = self.alive(x)
        # Every channel filtered by all three kernels, then reordered band-major (ids, x, y).
        y = F.conv2d(self.pad(x).reshape(-1, 1, H + 2, W + 2), kernels)
        y = y.reshape(B, C, 3, H, W).transpose(1, 2).reshape(B, 3 * C, H, W)
        hidden = F.relu(F.conv2d(y, m.w1.weight[:, :, None, None], m.w1.bias))
        update = F.conv2d(hidden, m.w2.weight[:, :, None, None], m.w2.bias)
        x = x + update * fire[:, None].to(x.dtype)
        return x * (pre & self.alive(x)).to(x.dtype)
