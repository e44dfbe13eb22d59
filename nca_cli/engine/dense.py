"""The dense formulation of a step: every cell computed with convolutions, channels-first.

This is the plain way to write a Growing-NCA step in PyTorch (per-channel perception filters as one
convolution through a reshape, two 1x1 convolutions, every cell computed), for 2D and 3D grids. It
is what the ONNX export runs (the sparse engine's gathers do not export) and what `nca bench` times
the engine against. It shares the weights of an NCA module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .nca import NCA, condition
from .perception import sobel_bank


class DenseStep(nn.Module):
    """One CA step over every cell of a channels-first state (B, C, *S), with the NCA's weights."""

    def __init__(self, model: NCA):
        super().__init__()
        self.model = model
        dims = model.config.dims
        self.conv = F.conv2d if dims == 2 else F.conv3d
        self.max_pool = F.max_pool2d if dims == 2 else F.max_pool3d

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad the spatial dims of (B, K, *S) by one cell as the model's edges say (cat: it exports)."""
        if self.model.config.padding == "wrap":
            for dim in range(2, x.ndim):
                n = x.shape[dim]
                x = torch.cat([x.narrow(dim, n - 1, 1), x, x.narrow(dim, 0, 1)], dim=dim)
            return x
        return F.pad(x, (1, 1) * (x.ndim - 2))

    def alive(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *S) -> (B, 1, *S) bool: the neighbourhood max of alpha above the threshold."""
        return self.max_pool(self.pad(x[:, 3:4]), 3, stride=1) > self.model.config.alive_threshold

    def kernels(self, angle: torch.Tensor) -> torch.Tensor:
        """The perception kernels as convolution weights (bands, 1, 3, 3[, 3])."""
        cfg = self.model.config
        if cfg.perception == "learned":
            bank = self.model.perception_weight.reshape(cfg.bands, *(3,) * cfg.dims)
        else:
            bank = sobel_bank(cfg.dims, torch.cos(angle), torch.sin(angle), cfg.axis, angle.device)
        return bank[:, None]

    def forward(self, x: torch.Tensor, fire: torch.Tensor, angle: torch.Tensor | None = None,
                goal: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, *S); fire: (B, *S), 1 (or True) where a cell updates; angle: radians () or None;
        goal (conditional models): (B, *S) goal numbers."""
        B, C, *S = x.shape
        m, cfg = self.model, self.model.config
        angle = torch.zeros((), device=x.device) if angle is None else angle
        ones = (1,) * cfg.dims
        # Every channel filtered by every kernel, then reordered band-major (all ids, all x, ...).
        y = self.conv(self.pad(x).reshape(B * C, 1, *(n + 2 for n in S)), self.kernels(angle))
        y = y.reshape(B, C, cfg.bands, *S).transpose(1, 2).reshape(B, cfg.bands * C, *S)
        hidden = self.conv(y, m.w1.weight.reshape(*m.w1.weight.shape, *ones), m.w1.bias)
        if cfg.goals:
            # movedim by a positive dim: ONNX export writes a negative one as an invalid permutation
            hidden = condition(hidden, m.goal_embedding(goal.long()).movedim(goal.ndim, 1), 1)  # (B, hidden, *S)
        hidden = F.relu(hidden)
        update = self.conv(hidden, m.w2.weight.reshape(*m.w2.weight.shape, *ones), m.w2.bias)
        if not cfg.alive_masking:
            return x + update * fire[:, None].to(x.dtype)
        pre = self.alive(x)
        x = x + update * fire[:, None].to(x.dtype)
        return x * (pre & self.alive(x)).to(x.dtype)
