"""Several seeds: seed cells where they are put or at random places on a body, and the loss of a
body whose place they decide.

The rule is the same at every cell, so a pattern grown from seeds moved by some offset is the
first pattern moved by that offset: seeds at random places on the body carry no sign of where on
the body they are. What the rule can learn is to turn several growth centres into one whole
body; where that body lies follows from where the seeds are. A grown pattern is therefore scored
against the target moved to the place that fits it best (`placed_loss`), and the move is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..engine import NCAConfig, rgba_loss, seed_state
from ..errors import NCAError


def seed_cells(config: NCAConfig, shape: tuple[int, ...], positions: torch.Tensor) -> torch.Tensor:
    """A grid of `shape` with a living seed cell (channels 3.. set to 1) at each of positions
    (n, dims) long, in cells. -> (1, *shape, C)"""
    for p in positions.tolist():
        if not all(0 <= v < n for v, n in zip(p, shape)):
            raise NCAError(f"seed position {','.join(map(str, p))} is off the {'x'.join(map(str, shape))} grid")
    x = torch.zeros(1, *shape, config.channels, device=positions.device)
    index = (torch.zeros(len(positions), dtype=torch.long, device=positions.device),) + tuple(positions.T)
    x[index + (slice(3, None),)] = 1.0
    return x


def random_body_cells(alpha: torch.Tensor, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`count` distinct cells drawn uniformly from where the alpha map (*S) is solid (> 0.5).
    -> (count, dims) long"""
    solid = (alpha > 0.5).nonzero()
    if len(solid) < count:
        raise NCAError(f"the target has {len(solid)} solid cells, too few for {count} seeds")
    pick = torch.randperm(len(solid), generator=generator, device=generator.device if generator else None)
    return solid[pick[:count].to(solid.device)]


def random_grid_cells(shape: tuple[int, ...], count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`count` distinct cells drawn uniformly from a grid of `shape` (*S). -> (count, dims) long"""
    total = math.prod(shape)
    if count > total:
        raise NCAError(f"the grid has {total:,} cells, too few for {count:,} seeds")
    pick = torch.randperm(total, generator=generator)[:count]
    return torch.stack(torch.unravel_index(pick, shape), dim=-1)


@torch.no_grad()
def placed_losses(x: torch.Tensor, target: torch.Tensor, reach: int) -> torch.Tensor:
    """The RGBA loss of each pattern x (B, *S, C) against its target (B, *S, 4) moved by every
    offset of up to `reach` cells along each axis; any part of a target moved off the grid counts
    as missed. -> (B, *(2 reach + 1)) mean squared errors, offset 0 in the middle."""
    dims = x.ndim - 2
    rgba, target = x[..., :4].movedim(-1, 1).float(), target.movedim(-1, 1).float()  # (B, 4, *S)
    axes = tuple(range(2, 2 + dims))
    size = [n + reach for n in rgba.shape[2:]]  # long enough that offsets up to `reach` do not wrap
    # Correlation of each pattern with its target at every offset, through the Fourier transform:
    # moved[s] = sum over cells j of x[j] * target[j - s].
    spectrum = torch.fft.rfftn(rgba, s=size, dim=axes) * torch.fft.rfftn(target, s=size, dim=axes).conj()
    moved = torch.fft.irfftn(spectrum, s=size, dim=axes).sum(1)  # (B, *size), offset s at index s mod size
    for k in range(dims):
        moved = torch.cat([moved.narrow(k + 1, size[k] - reach, reach), moved.narrow(k + 1, 0, reach + 1)], dim=k + 1)
    own = rgba.square().flatten(1).sum(1).view(-1, *[1] * dims)
    theirs = target.square().flatten(1).sum(1).view(-1, *[1] * dims)
    return (own + theirs - 2 * moved) / (4 * math.prod(rgba.shape[2:]))


def move(image: torch.Tensor, offset: list[int]) -> torch.Tensor:
    """image (*S, K) moved by offset (one whole number of cells per axis), zero where nothing moves in."""
    for axis, o in enumerate(offset):
        n = image.shape[axis]
        if o:
            kept = image.narrow(axis, max(-o, 0), n - abs(o))
            zeros = torch.zeros_like(image.narrow(axis, 0, abs(o)))
            image = torch.cat([zeros, kept] if o > 0 else [kept, zeros], dim=axis)
    return image


def placed_loss(x: torch.Tensor, target: torch.Tensor, reach: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of each pattern x (B, *S, C) against its target (B, *S, 4) or (*S, 4) moved to where
    it fits best, by up to `reach` cells along each axis (a part moved off the grid counts as missed).
    Differentiable in x. -> (losses (B,), offsets (B, dims) long: how far the target was moved)"""
    B, dims = x.shape[0], x.ndim - 2
    target = target.expand(B, *target.shape[-dims - 1:])
    where = placed_losses(x.detach(), target, reach).flatten(1).argmin(1)
    side = 2 * reach + 1
    offsets = torch.stack([where // side ** k % side for k in reversed(range(dims))], dim=1) - reach
    moved = torch.stack([move(target[i], offsets[i].tolist()) for i in range(B)])
    spatial = tuple(range(1, dims + 2))
    missed = target.square().sum(spatial) - moved.square().sum(spatial)
    return ((x[..., :4] - moved).square().sum(spatial) + missed) / moved[0].numel(), offsets


def placement_reach(target) -> int:
    """How far (cells) a body grown from several seeds may lie from its target's place, for a Target
    or GoalSet: the margin around the picture (its pad), at most half the grid."""
    return max(1, min(target.pad, min(target.shape) // 2))


@dataclass
class Merge:
    """Patterns grown from `seeds` seed cells (one: the centre seed; more: random solid cells of the
    target): mean losses against the target where it fits best and where it is, and the mean
    distance (cells) between the two places."""

    seeds: int
    placed_loss: float
    fixed_loss: float
    offset: float

    def to_dict(self) -> dict:
        return {"seeds": self.seeds, "placed_loss": self.placed_loss, "fixed_loss": self.fixed_loss,
                "offset": self.offset}


@torch.inference_mode()
def measure_merging(model, target, counts: tuple[int, ...] = (1, 2, 3), runs: int = 8, steps: int = 200,
                    seed: int = 0) -> list[Merge]:
    """For each seed count, `runs` patterns grown `steps` steps from that many seed cells (model: an
    NCA, or a Steered conditional model; target: a Target)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    rgba, shape = target.rgba.to(device), target.shape
    rows = []
    for count in counts:
        if count == 1:
            x = seed_state(model.config, *shape, batch=runs, device=device)
        else:
            x = torch.cat([seed_cells(model.config, shape, random_body_cells(rgba[..., 3], count, generator))
                           for _ in range(runs)])
        x = model.rollout(x, steps, generator=generator)
        placed, offsets = placed_loss(x, rgba, placement_reach(target))
        rows.append(Merge(count, float(placed.mean()), float(rgba_loss(x, rgba).mean()),
                          float(offsets.float().norm(dim=1).mean())))
    return rows
