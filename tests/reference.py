"""An independent, obvious formulation of the Growing-NCA step (channels-first, dense convolutions).

Written the way the article's notebook does it, sharing no code with nca_cli.engine, so tests can
check the fast engine against it number for number.
"""

import math

import torch
import torch.nn.functional as F


def kernels(angle_deg: float) -> torch.Tensor:
    a = math.radians(angle_deg)
    ident = torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]])
    dx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    dy = dx.T
    return torch.stack([ident, math.cos(a) * dx - math.sin(a) * dy, math.sin(a) * dx + math.cos(a) * dy])


def pad(x: torch.Tensor, padding: str) -> torch.Tensor:
    return F.pad(x, (1, 1, 1, 1), mode="circular" if padding == "wrap" else "constant")


def alive(x: torch.Tensor, threshold: float, padding: str) -> torch.Tensor:
    alpha = x[:, 3:4]
    if padding == "wrap":
        return F.max_pool2d(pad(alpha, "wrap"), 3, stride=1) > threshold
    return F.max_pool2d(alpha, 3, stride=1, padding=1) > threshold


def perceive(x: torch.Tensor, angle: float, padding: str) -> torch.Tensor:
    """(B, C, H, W) -> (B, 3C, H, W), band-major (all identities, all x, all y)."""
    B, C, H, W = x.shape
    k = kernels(angle)
    weight = k.repeat(C, 1, 1)[:, None]  # depthwise, channel-major: (c0 id, c0 x, c0 y, c1 id, ...)
    y = F.conv2d(pad(x, padding), weight, groups=C)
    return y.view(B, C, 3, H, W).transpose(1, 2).reshape(B, 3 * C, H, W)


def step(model, x_bhwc: torch.Tensor, fire: torch.Tensor, angle: float = 0.0,
         padding: str = "zero", threshold: float = 0.1) -> torch.Tensor:
    """One step with explicit fire mask (B, H, W) bool; states channels-last in and out."""
    x = x_bhwc.permute(0, 3, 1, 2)
    pre = alive(x, threshold, padding)
    y = perceive(x, angle, padding)
    h = F.relu(F.conv2d(y, model.w1.weight[:, :, None, None], model.w1.bias))
    dx = F.conv2d(h, model.w2.weight[:, :, None, None], model.w2.bias)
    x = x + dx * fire[:, None].float()
    x = x * (pre & alive(x, threshold, padding)).float()
    return x.permute(0, 2, 3, 1)
