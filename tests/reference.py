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


def sobel3d() -> torch.Tensor:
    """Gradient kernels of a 3x3x3 neighbourhood along x (W), y (H), z (D): central difference
    along the axis, smoothed by (1, 2, 1) along the other two, divided by 32. -> (3, 3, 3, 3)"""
    k = torch.zeros(3, 3, 3, 3)
    weight = {0: 1.0, 1: 2.0, 2: 1.0}
    for d in range(3):
        for h in range(3):
            for w in range(3):
                k[0, d, h, w] = (w - 1) * weight[d] * weight[h] / 32  # x
                k[1, d, h, w] = (h - 1) * weight[d] * weight[w] / 32  # y
                k[2, d, h, w] = (d - 1) * weight[h] * weight[w] / 32  # z
    return k


def perceive3d(x: torch.Tensor, angle: float, axis: str, padding: str) -> torch.Tensor:
    """(B, C, D, H, W) -> (B, 4C, D, H, W): identity, then the gradient vector (x, y, z) turned by
    `angle` degrees about `axis` (right-handed: x -> y about z, y -> z about x, z -> x about y)."""
    B, C = x.shape[:2]
    xp = F.pad(x, (1,) * 6, mode="circular" if padding == "wrap" else "constant")
    flat = xp.reshape(B * C, 1, *xp.shape[2:])
    g = F.conv3d(flat, sobel3d()[:, None]).reshape(B, C, 3, *x.shape[2:])
    gx, gy, gz = g[:, :, 0], g[:, :, 1], g[:, :, 2]
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    if axis == "z":
        gx, gy = c * gx - s * gy, s * gx + c * gy
    elif axis == "x":
        gy, gz = c * gy - s * gz, s * gy + c * gz
    else:
        gz, gx = c * gz - s * gx, s * gz + c * gx
    return torch.cat([x, gx, gy, gz], dim=1)


def step3d(model, x_bdhwc: torch.Tensor, fire: torch.Tensor, angle: float = 0.0, axis: str = "z",
           padding: str = "zero", threshold: float = 0.1) -> torch.Tensor:
    """One 3D step with explicit fire mask (B, D, H, W) bool; states channels-last in and out."""
    x = x_bdhwc.permute(0, 4, 1, 2, 3)

    def alive(state):
        alpha = F.pad(state[:, 3:4], (1,) * 6, mode="circular" if padding == "wrap" else "constant")
        return F.max_pool3d(alpha, 3, stride=1) > threshold

    pre = alive(x)
    y = perceive3d(x, angle, axis, padding)
    h = F.relu(F.conv3d(y, model.w1.weight[:, :, None, None, None], model.w1.bias))
    dx = F.conv3d(h, model.w2.weight[:, :, None, None, None], model.w2.bias)
    x = x + dx * fire[:, None].float()
    x = x * (pre & alive(x)).float()
    return x.permute(0, 2, 3, 4, 1)
