"""Damage: which cells to kill. Masks are (B, *S) bool, True = killed (S: (H, W), or (D, H, W)).

Shapes: a disc (a ball in a voxel body: `sphere` and `circle` are the same shape), a rectangle,
half of the pattern cut away, random noise, or a mask picture. Positions are in cells, or in
percent of the living pattern's bounding box ("50%,30%"; three coordinates D,H,W in a voxel body).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import NCAError

SHAPES = ("circle", "sphere", "rect", "half", "noise", "mask")
SIDES = ("left", "right", "top", "bottom", "front", "back")
# The halves a side names: (grid axis, the half above the middle) on a picture (H, W) and on a
# voxel body (D up, H, W); front and back are only in a voxel body.
HALVES = {2: {"top": (0, False), "bottom": (0, True), "left": (1, False), "right": (1, True)},
          3: {"top": (0, True), "bottom": (0, False), "front": (1, False), "back": (1, True),
              "left": (2, False), "right": (2, True)}}
PICTURE_ONLY = ("rect", "mask")  # shapes that are drawn on a 2D grid
# Training wounds: disc radii drawn uniformly from this range, as fractions of the grid's width
# (the article's 5% to 20%).
TRAINING_WOUND_RADIUS = (0.05, 0.20)


def ball_mask(shape: tuple[int, ...], centres: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Balls (discs on a 2D grid) of the given centres and radii, in cells, on a grid of `shape`.
    centres: (B, dims), radius: (B,) -> (B, *shape) bool."""
    dist2 = torch.zeros(len(radius), *shape, device=radius.device)
    for k, n in enumerate(shape):
        along = torch.arange(n, dtype=torch.float32, device=radius.device)
        view = [-1 if j == k else 1 for j in range(len(shape))]
        dist2 = dist2 + (along.view(1, *view) - centres[:, k].view(-1, *[1] * len(shape))).square()
    return dist2 < radius.view(-1, *[1] * len(shape)).square()


def circle_mask(height: int, width: int, cy: torch.Tensor, cx: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Discs of the given centres and radii, in cells. cy, cx, radius: (B,) -> (B, H, W) bool."""
    return ball_mask((height, width), torch.stack([cy, cx], dim=1), radius)


def random_body_wounds(x: torch.Tensor, threshold: float = 0.1,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Training damage: one disc (a ball on a 3D grid) per pattern of x (n, *S, C), radius 5%-20% of
    the grid's width as in the article, but centred on a random living cell (alpha > threshold)
    rather than anywhere in the middle of the grid, so that no wound misses the pattern. (A pattern
    with no living cell gets the article's.) Returns (n, *S) bool.
    """
    n, shape = x.shape[0], tuple(x.shape[1:-1])
    u = torch.rand(len(shape) + 1, n, generator=generator, device=x.device)
    centres = torch.stack([(u[k] * 0.5 + 0.25) * size for k, size in enumerate(shape)], dim=1)
    for i in range(n):
        living = (x[i, ..., 3] > threshold).nonzero()
        if len(living):
            centres[i] = living[int(u[0, i] * len(living)) % len(living)].float()
    low, high = TRAINING_WOUND_RADIUS
    return ball_mask(shape, centres, (u[-1] * (high - low) + low) * shape[-1])


def apply_damage(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero every channel of the masked cells. x: (B, *S, C), mask: (B, *S) or (*S) bool."""
    return x * (~mask).unsqueeze(-1).to(x.dtype)


def living_box(x: torch.Tensor, threshold: float = 0.1) -> tuple[float, float, float, float] | None:
    """Bounding box (top, left, bottom, right; inclusive, in cells) of alpha > threshold in (H, W, C)."""
    alive = (x[..., 3] > threshold).nonzero()
    if len(alive) == 0:
        return None
    (top, left), (bottom, right) = alive.min(0).values.tolist(), alive.max(0).values.tolist()
    return top, left, bottom, right


def body_point(alpha: torch.Tensor) -> tuple[float, ...]:
    """A point on the pattern of an alpha map (*S): the opaque (alpha > 0.5) cell nearest its centroid."""
    weights = alpha.clamp(0, 1)
    total = weights.sum()
    if total <= 0:
        return tuple((n - 1) / 2 for n in alpha.shape)
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32, device=alpha.device)
                                          for n in alpha.shape], indexing="ij"), dim=-1)  # (*S, dims)
    centroid = (weights[..., None] * coords).reshape(-1, alpha.ndim).sum(0) / total
    solid = (alpha > 0.5).nonzero().float()
    if len(solid) == 0:
        return tuple(float(c) for c in centroid)
    nearest = solid[((solid - centroid) ** 2).sum(1).argmin()]
    return tuple(float(c) for c in nearest)


def body_box(x: torch.Tensor, threshold: float = 0.1) -> tuple[list[int], list[int]] | None:
    """The living pattern's bounding box in a state (*S, C): lowest and highest cell per axis (inclusive)."""
    alive = (x[..., 3] > threshold).nonzero()
    if len(alive) == 0:
        return None
    return alive.min(0).values.tolist(), alive.max(0).values.tolist()


def parse_position(text: str) -> tuple[str, ...]:
    """'36,40' or '50%,30%' (row, column), or three coordinates 'D,H,W' in a voxel body -> the
    parts, checked."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3) or not all(_is_coordinate(p) for p in parts):
        raise NCAError(f"invalid position {text!r}: expected ROW,COL in cells or percent, e.g. 36,40 or 50%,30% "
                       "(D,H,W in a voxel body)" if len(parts) == 3 else
                       f"invalid position {text!r}: expected ROW,COL in cells or percent, e.g. 36,40 or 50%,30%")
    return tuple(parts)


def _is_coordinate(text: str) -> bool:
    try:
        float(text[:-1] if text.endswith("%") else text)
    except ValueError:
        return False
    return True


def resolve_position(position: tuple[str, ...] | None, x: torch.Tensor, threshold: float = 0.1) -> tuple[float, ...]:
    """A position in cells for the pattern in x (*S, C): absolute, percent of the box, or (None) on the body."""
    shape = tuple(x.shape[:-1])
    if position is None:
        return body_point(x[..., 3])
    low, high = body_box(x, threshold) or ([0] * len(shape), [n - 1 for n in shape])
    coords = tuple(lo + (hi - lo) * float(text[:-1]) / 100 if text.endswith("%") else float(text)
                   for text, lo, hi in zip(position, low, high))
    if not all(0 <= c < n for c, n in zip(coords, shape)):
        raise NCAError(f"position {','.join(position)} is off the {'x'.join(map(str, shape))} grid")
    return coords


@dataclass
class Wound:
    """A damage to apply: a shape and its parameters (cells unless stated)."""

    shape: str = "circle"
    position: tuple[str, ...] | None = None  # centre; None: on the pattern's body
    radius: float = 10.0  # circle, sphere
    size: tuple[int, int] = (12, 12)  # rect: height, width
    side: str = "left"  # half: which half is cut away
    fraction: float = 0.5  # noise: share of cells killed
    mask: torch.Tensor | None = None  # mask: (H, W) bool from a picture

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise NCAError(f"unknown shape {self.shape!r}: use one of {', '.join(SHAPES)}")
        if not math.isfinite(self.radius) or self.radius < 0:
            raise NCAError(f"radius must not be negative, got {self.radius:g}")
        if min(self.size) < 1:
            raise NCAError(f"rectangle size must be positive, got {self.size[0]}x{self.size[1]}")
        if self.side not in SIDES:
            raise NCAError(f"unknown side {self.side!r}: use one of {', '.join(SIDES)}")
        if not 0 <= self.fraction <= 1:
            raise NCAError(f"noise fraction must be between 0 and 1, got {self.fraction:g}")
        if self.shape == "mask" and self.mask is None:
            raise NCAError("shape mask needs a mask picture")

    def check_grid(self, height: int, width: int) -> None:
        """A mask picture must be the grid's size."""
        if self.mask is not None and tuple(self.mask.shape) != (height, width):
            raise NCAError(f"the mask is {self.mask.shape[0]}x{self.mask.shape[1]} but the grid is {height}x{width}")

    def check_dims(self, dims: int) -> None:
        """Rectangles, mask pictures and the front and back halves exist on one kind of grid only, and
        a position has a coordinate per side of the grid."""
        if self.position is not None and len(self.position) != dims:
            raise NCAError(f"position {','.join(self.position)} has {len(self.position)} coordinates; this grid has "
                           f"{dims} ({'ROW,COL' if dims == 2 else 'D,H,W'})")
        if dims == 3 and self.shape in PICTURE_ONLY:
            raise NCAError(f"a {self.shape} wound is drawn on a picture; a voxel body takes sphere, half or noise")
        if self.shape == "half" and self.side not in HALVES[dims]:
            raise NCAError(f"side {self.side} is a half of a voxel body; a picture has {', '.join(HALVES[2])}")

    def masks(self, x: torch.Tensor, threshold: float = 0.1,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """The cells this wound kills in each pattern of x (B, *S, C). -> (B, *S) bool"""
        self.check_dims(x.ndim - 2)
        if self.shape == "noise":
            return torch.rand(x.shape[:-1], generator=generator, device=x.device) < self.fraction
        if self.shape in ("circle", "sphere", "half"):
            return torch.stack([self._ball_or_half(x[b], threshold) for b in range(len(x))])
        B, H, W, _ = x.shape
        if self.shape == "mask":
            self.check_grid(H, W)
            return self.mask.to(x.device).expand(B, H, W)
        return torch.stack([self._rect(x[b], threshold) for b in range(B)])

    def _ball_or_half(self, x: torch.Tensor, threshold: float) -> torch.Tensor:
        """A ball (disc) about the wound's centre, or half of the living box, in one pattern (*S, C)."""
        shape = tuple(x.shape[:-1])
        if self.shape != "half":
            centre = torch.tensor([resolve_position(self.position, x, threshold)], device=x.device)
            return ball_mask(shape, centre, torch.tensor([float(self.radius)], device=x.device))[0]
        axis, above = HALVES[len(shape)][self.side]
        low, high = body_box(x, threshold) or ([0] * len(shape), [n - 1 for n in shape])
        along = torch.arange(shape[axis], device=x.device).float()
        middle = (low[axis] + high[axis]) / 2
        cut = along > middle if above else along < middle
        return cut.view([-1 if k == axis else 1 for k in range(len(shape))]).expand(shape)

    def _rect(self, x: torch.Tensor, threshold: float) -> torch.Tensor:
        H, W = x.shape[:2]
        rows = torch.arange(H, device=x.device).view(-1, 1).float()
        cols = torch.arange(W, device=x.device).view(1, -1).float()
        cy, cx = resolve_position(self.position, x, threshold)
        h, w = self.size
        top, left = math.ceil(cy - h / 2), math.ceil(cx - w / 2)  # exactly h rows and w columns about the centre
        return (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)

