"""The Neural Cellular Automaton itself: perception, update rule, alive mask, step, rollout, render.

States are channels-last float32 tensors of shape (B, H, W, C): channels 0..3 are RGBA with the
colour premultiplied by alpha, the rest are hidden channels. Nothing here knows about files,
terminals or the command line.

The step is computed sparsely. A cell's update only matters where the cell fires and was alive
before the update (everything else is multiplied by zero), so the per-cell network runs on
exactly those cells: their 3x3 neighbourhoods are gathered into rows, perceived, and passed
through the network as one matrix multiply. In a growing pattern most of the grid is empty and
half the living cells rest each step, so this does a small fraction of the dense work while
giving the same numbers (see tests/test_engine.py, which checks it against a dense formulation).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

PADDINGS = ("zero", "wrap")


@dataclass(frozen=True)
class NCAConfig:
    """Everything needed to rebuild a model; stored as JSON in every checkpoint."""

    channels: int = 16  # RGBA + hidden channels
    hidden: int = 128  # width of the per-cell network's hidden layer
    fire_rate: float = 0.5  # probability that a cell updates in a given step
    alive_threshold: float = 0.1  # a cell lives while the 3x3 max of alpha exceeds this
    padding: str = "zero"  # grid edges: "zero" (as trained in the article) or "wrap" (as its demo)
    angle: float = 0.0  # perception rotation in degrees applied by default

    def __post_init__(self):
        if self.channels < 4:
            raise ValueError(f"channels must be at least 4 (RGBA), got {self.channels}")
        if self.hidden < 1:
            raise ValueError(f"hidden must be positive, got {self.hidden}")
        if not 0.0 < self.fire_rate <= 1.0:
            raise ValueError(f"fire_rate must be in (0, 1], got {self.fire_rate}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NCAConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        return cls(**data)


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


def pad_grid(x: torch.Tensor, padding: str) -> torch.Tensor:
    """Pad the two spatial dims of (B, H, W, C) by one cell: zeros, or wrap around. -> (B, H+2, W+2, C)."""
    if padding == "wrap":
        x = torch.cat([x[:, -1:], x, x[:, :1]], dim=1)
        return torch.cat([x[:, :, -1:], x, x[:, :, :1]], dim=2)
    return F.pad(x, (0, 0, 1, 1, 1, 1))


def perceive(x: torch.Tensor, padding: str = "zero", angle: float = 0.0) -> torch.Tensor:
    """Dense perception of every cell, Sobel kernels turned by `angle` degrees: (B, H, W, C) -> (B, H, W, 3C).

    Band-major order: the C state channels, then C Sobel-x responses, then C Sobel-y responses
    (the order of the Distill demo's weights).
    """
    B, H, W, C = x.shape
    k = perception_kernels(math.radians(angle), x.device)  # (3, 3, 3)
    xp = pad_grid(x, padding)
    bands = []
    for kernel in k:
        acc = torch.zeros_like(x)
        for dy in range(3):
            for dx in range(3):
                if kernel[dy, dx] != 0:
                    acc = acc + kernel[dy, dx] * xp[:, dy : dy + H, dx : dx + W]
        bands.append(acc)
    return torch.cat(bands, dim=-1)


@torch.no_grad()
def alive_mask(x: torch.Tensor, threshold: float = 0.1, padding: str = "zero") -> torch.Tensor:
    """Cells with a living neighbourhood: 3x3 max of alpha > threshold. (B, H, W, C) -> (B, H, W) bool."""
    return _max3x3(pad_grid(x[..., 3:4].detach(), padding)[..., 0]) > threshold


@torch.no_grad()
def _max3x3(padded: torch.Tensor) -> torch.Tensor:
    """Maximum over each 3x3 window of (B, H+2, W+2), separably. -> (B, H, W)"""
    rows = torch.maximum(torch.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return torch.maximum(torch.maximum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])


@functools.lru_cache(maxsize=64)
def _tap_kernels(angle: float, device: torch.device) -> torch.Tensor:
    """perception_kernels for an angle in degrees as a (3, 9) matrix, made once per angle and device
    (as an ordinary tensor even if first asked for under inference mode, so training can use it)."""
    with torch.inference_mode(False):
        return perception_kernels(math.radians(angle), device).reshape(3, 9)


@functools.lru_cache(maxsize=64)
def _taps(row_length: int, device: torch.device) -> torch.Tensor:
    """Offsets of a 3x3 neighbourhood from its centre in a flat grid with rows `row_length` long. (9,)"""
    with torch.inference_mode(False):
        return torch.tensor([dy * row_length + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)], device=device)


def seed_state(config: NCAConfig, height: int, width: int, batch: int = 1, device=None) -> torch.Tensor:
    """A single living cell in the centre: channels 3.. set to 1. -> (batch, height, width, C)."""
    x = torch.zeros(batch, height, width, config.channels, device=device)
    x[:, height // 2, width // 2, 3:] = 1.0
    return x


def render_rgb(x: torch.Tensor) -> torch.Tensor:
    """Composite premultiplied RGBA over white. (..., H, W, C) float -> (..., H, W, 3) uint8."""
    alpha = x[..., 3:4].clamp(0.0, 1.0)
    rgb = (1.0 - alpha + x[..., :3]).clamp(0.0, 1.0)
    return (rgb * 255.0 + 0.5).to(torch.uint8)


def rgba_loss(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the RGBA channels against a (H, W, 4) target, per sample. -> (B,)"""
    return (x[..., :4] - target).square().mean(dim=(-3, -2, -1))


def _living_box(pre: torch.Tensor, padding: str) -> tuple[int, int, int, int] | None:
    """Rows y0:y1 and columns x0:x1 covering every living cell of (B, H, W) plus one cell around.

    None when no smaller region can stand in for the grid: nothing lives, the box is the whole
    grid, or (wrap-around edges) the box reaches an edge, where neighbours wrap to the far side.
    """
    H, W = pre.shape[1:]
    rows = pre.any(dim=2).any(dim=0).nonzero()
    cols = pre.any(dim=1).any(dim=0).nonzero()
    if len(rows) == 0:
        return None
    y0, y1 = int(rows[0]) - 1, int(rows[-1]) + 2
    x0, x1 = int(cols[0]) - 1, int(cols[-1]) + 2
    if padding == "wrap" and (y0 < 0 or x0 < 0 or y1 > H or x1 > W):
        return None
    y0, y1, x0, x1 = max(y0, 0), min(y1, H), max(x0, 0), min(x1, W)
    if (y1 - y0) * (x1 - x0) == H * W:
        return None
    return y0, y1, x0, x1


class NCA(nn.Module):
    """The update rule: a per-cell MLP 3C -> hidden -> ReLU -> C on perceived neighbourhoods."""

    def __init__(self, config: NCAConfig = NCAConfig()):
        super().__init__()
        self.config = config
        C, hidden = config.channels, config.hidden
        self.w1 = nn.Linear(3 * C, hidden)
        self.w2 = nn.Linear(hidden, C)
        nn.init.xavier_uniform_(self.w1.weight)
        nn.init.zeros_(self.w1.bias)
        # A zero last layer makes the untrained rule "do nothing": training starts from stability.
        nn.init.zeros_(self.w2.weight)
        nn.init.zeros_(self.w2.bias)

    def update(self, perception: torch.Tensor) -> torch.Tensor:
        """Per-cell residual update from perception: (..., 3C) -> (..., C)."""
        return self.w2(torch.relu_(self.w1(perception)))  # in place: the first layer's output is not kept

    def step(self, x: torch.Tensor, fire: torch.Tensor | None = None, angle: float | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One stochastic update of every cell. x: (B, H, W, C); fire: (B, H, W) bool or None.

        `angle` is the perception rotation in degrees (default: the config's). Without `fire`,
        cells fire with probability fire_rate drawn from `generator`.
        """
        B, H, W, C = x.shape
        cfg = self.config
        if fire is None:
            fire = torch.rand(B, H, W, generator=generator, device=x.device) < cfg.fire_rate
        pre = alive_mask(x, cfg.alive_threshold, cfg.padding)
        # Every cell outside the living region ends the step at zero, so the work is done on the
        # living region's bounding box plus one cell of neighbours, and the result zero-padded back.
        box = _living_box(pre, cfg.padding)
        if box is None:
            return self._step_region(x, pre, fire, angle, cfg.padding)
        y0, y1, x0, x1 = box
        region = self._step_region(x[:, y0:y1, x0:x1], pre[:, y0:y1, x0:x1], fire[:, y0:y1, x0:x1], angle, "zero")
        return F.pad(region, (0, 0, x0, W - x1, y0, H - y1))

    def _step_region(self, x: torch.Tensor, pre: torch.Tensor, fire: torch.Tensor, angle: float | None,
                     padding: str) -> torch.Tensor:
        B, H, W, C = x.shape
        # Work on the grid padded by one cell, indexing cells by their place in it: the 3x3
        # neighbourhood of the cell at flat index i is i + taps, and updates land in place.
        xp = pad_grid(x, padding)
        active = F.pad(pre & fire, (1, 1, 1, 1)).reshape(-1).nonzero().squeeze(1)  # (N,)
        update = self._update_cells(xp.reshape(-1, C), active, W + 2, angle)
        # In place: xp is this step's own padded copy, and the gather above keeps no reference to it.
        xp = xp.reshape(-1, C).index_add_(0, active, update).reshape(B, H + 2, W + 2, C)
        if padding == "zero":  # the border is still zero: the alive mask needs no new padding
            post = _max3x3(xp[..., 3]) > self.config.alive_threshold
        else:
            post = alive_mask(xp[:, 1:-1, 1:-1], self.config.alive_threshold, padding)
        return xp[:, 1:-1, 1:-1] * (pre & post).unsqueeze(-1).to(x.dtype)

    def _update_cells(self, padded: torch.Tensor, active: torch.Tensor, row_length: int,
                      angle: float | None) -> torch.Tensor:
        """Updates of the cells at flat indices `active` of a padded grid (cells, C) whose rows
        are `row_length` cells long. -> (N, C)"""
        C = padded.shape[1]
        angle = self.config.angle if angle is None else angle
        kernels, taps = _tap_kernels(angle, padded.device), _taps(row_length, padded.device)
        # Gathered tap-major, (9, N, C), so that perception is one plain matrix multiply.
        patches = padded.index_select(0, (taps[:, None] + active).reshape(-1)).reshape(9, -1)
        perception = (kernels @ patches).reshape(3, -1, C).transpose(0, 1).reshape(-1, 3 * C)  # band-major
        return self.update(perception)

    def rollout(self, x: torch.Tensor, steps: int, angle: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Run `steps` updates from x (B, H, W, C); returns the final state."""
        for _ in range(steps):
            x = self.step(x, angle=angle, generator=generator)
        return x

    def forward(self, x: torch.Tensor, steps: int = 1) -> torch.Tensor:
        return self.rollout(x, steps)
