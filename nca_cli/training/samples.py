"""What each training sample is besides its state: its goal, how it starts, and how it is scored.

- A conditional model's pool holds a goal per sample. A sample that restarts from the seed draws
  a goal; a drawn sample may be handed another goal (`switch_rate`), so that the rule learns to
  turn one body into another rather than only to grow each from the seed.
- A sample that holds its body (neither restarted nor wounded) may be scored with an overgrowth
  penalty as well (`overgrowth`): alpha where its target is empty. A voxel body's rule otherwise
  grows a halo of faint cells around the body.
- A sample may start from several seed cells at random solid cells of its target
  (`seed_cells_min`..`seed_cells_max`; one seed is the usual one in the grid's centre). Such a
  sample is "placed": the rule decides where its body lies, so it is scored against the target
  moved to where it fits best (growth.seeds.placed_loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import NCAConfig, rgba_loss, seed_state
from ..growth.seeds import placed_loss, random_body_cells, seed_cells
from .config import TrainConfig


@dataclass
class Batch:
    """A training batch: pool indices (None in grow mode), states (B, *S, C), each sample's goal (B,)
    long, which samples are placed (B,) bool (scored where their body fits best), and which are
    held: pool samples neither restarted nor wounded, that should keep the body they have (B,) bool."""

    idx: torch.Tensor | None
    x: torch.Tensor
    goals: torch.Tensor
    placed: torch.Tensor
    held: torch.Tensor | None = None


def first_goals(count: int, goals: int, device: torch.device) -> torch.Tensor:
    """The goals of a new pool: every goal in turn. (count,) long"""
    return torch.arange(count, device=device) % max(goals, 1)


def sample_losses(x: torch.Tensor, targets: torch.Tensor, goals: torch.Tensor, placed: torch.Tensor,
                  reach: int) -> torch.Tensor:
    """Each sample's loss against its goal's target (targets: (K, *S, 4)), where its body fits best for
    placed samples (within `reach` cells). x: (B, *S, C) -> (B,)"""
    wanted = targets[goals]
    losses = rgba_loss(x, wanted)
    if placed.any():
        where = placed.nonzero().squeeze(1)
        losses = losses.index_put((where,), placed_loss(x[where], wanted[where], reach)[0])
    return losses


def overgrowth(x: torch.Tensor, targets: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
    """Each sample's overgrowth: the mean over the cells where its goal's target is empty of alpha
    squared, over 4 (on the scale of the RGBA loss, a mean over 4 channels). x: (B, *S, C) -> (B,)"""
    empty = targets[goals][..., 3] == 0
    return (x[..., 3].square() * empty).mean(dim=tuple(range(1, x.ndim - 1))) / 4


def restart(config: NCAConfig, recipe: TrainConfig, targets: torch.Tensor,
            generator: torch.Generator) -> tuple[torch.Tensor, int, bool]:
    """A sample that starts afresh: its goal (drawn when there are several), and one seed in the
    centre or, drawing the count from seed_cells_min..seed_cells_max, several seeds at random solid
    cells of the goal's target. -> (state (1, *S, C), goal, placed)"""
    device, shape = targets.device, tuple(targets.shape[1:-1])
    goal = int(torch.randint(len(targets), (1,), generator=generator, device=device)) if len(targets) > 1 else 0
    count = recipe.seed_cells_min
    if recipe.seed_cells_max > recipe.seed_cells_min:
        count = int(torch.randint(recipe.seed_cells_min, recipe.seed_cells_max + 1, (1,), generator=generator,
                                  device=device))
    if count == 1:
        return seed_state(config, *shape, device=device), goal, False
    return seed_cells(config, shape, random_body_cells(targets[goal, ..., 3], count, generator)), goal, True


def switch_goals(goals: torch.Tensor, rate: float, count: int, generator: torch.Generator) -> torch.Tensor:
    """Which samples are handed another goal (each with probability `rate`, none with one goal), and
    their new goals, in place. goals: (B,) long -> switched (B,) bool"""
    if count < 2 or rate <= 0:
        return torch.zeros_like(goals, dtype=torch.bool)
    switched = torch.rand(len(goals), generator=generator, device=goals.device) < rate
    step = torch.randint(1, count, (len(goals),), generator=generator, device=goals.device)  # never the same goal
    goals[switched] = (goals[switched] + step[switched]) % count
    return switched
