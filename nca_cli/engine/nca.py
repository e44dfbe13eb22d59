"""The update rule and its sparse step: the Neural Cellular Automaton itself.

States are channels-last float32 tensors (B, *S, C) (S: height, width): channels 0..3 are RGBA
with the colour premultiplied by alpha, the rest are hidden channels. Nothing here knows about
files, terminals or the command line.

The step is computed sparsely. A cell's update only matters where the cell fires and was alive
before the update (everything else is multiplied by zero), so the per-cell network runs on
exactly those cells: their neighbourhoods are gathered into rows, perceived, and passed through
the network as one matrix multiply. In a growing pattern most of the grid is empty and half the
living cells rest each step, so this does a small fraction of the dense work while giving the
same numbers (tests/test_engine.py checks it against a dense formulation).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NCAError
from .config import NCAConfig
from .grid import alive_mask, crop, flat_taps, grow_box, living_box, neighbourhood_max, pad_grid, spatial, uncrop
from .perception import tap_kernels

# on_step(k, x) sees the state after k steps (k = 0 .. steps) and may return a replacement for it.
StepHook = Callable[[int, torch.Tensor], "torch.Tensor | None"]
# A conditional model's goals for a rollout: fixed (B,) or (B, *S), a function of the step, or None.
GoalSchedule = "torch.Tensor | Callable[[int], torch.Tensor] | None"


def _sample_goal(goal: torch.Tensor, i: int) -> torch.Tensor:
    """Sample i's goal, kept as a batch of one: (1,) or (1, *S)."""
    goal = torch.as_tensor(goal)
    return goal[i : i + 1] if goal.ndim else goal.view(1)


def _active_goals(goal: torch.Tensor | None, active: torch.Tensor) -> torch.Tensor | None:
    """The goals of the cells at flat indices `active` of the padded grid, from a goal map (B, *S)."""
    if goal is None:
        return None
    return F.pad(goal, (1, 1) * (goal.ndim - 1)).reshape(-1)[active]


def condition(hidden: torch.Tensor, embedded: torch.Tensor, dim: int) -> torch.Tensor:
    """A conditional model's hidden layer (before the ReLU) under each cell's goal vectors
    `embedded`, along `dim`: hidden + shift, or for "film" vectors (shift, scale) hidden * (1 + scale)
    + shift."""
    if embedded.shape[dim] == hidden.shape[dim]:
        return hidden + embedded
    shift, scale = embedded.chunk(2, dim)
    return torch.addcmul(shift, hidden, 1.0 + scale)


class NCA(nn.Module):
    """The update rule: a per-cell MLP (bands*C) -> hidden -> ReLU -> C on perceived neighbourhoods."""

    def __init__(self, config: NCAConfig = NCAConfig()):
        super().__init__()
        self.config = config
        C, hidden = config.channels, config.hidden
        self.w1 = nn.Linear(config.bands * C, hidden)
        self.w2 = nn.Linear(hidden, C)
        if config.perception == "learned":
            # (bands, taps): the first kernel starts as the identity (the cell's own state), the
            # others small and random, so that the untrained rule already sees its neighbours.
            taps = config.taps
            kernels = torch.randn(config.bands, taps) * (1.0 / taps) ** 0.5
            kernels[0] = 0.0
            kernels[0, taps // 2] = 1.0
            self.perception_weight = nn.Parameter(kernels)
        nn.init.xavier_uniform_(self.w1.weight)
        nn.init.zeros_(self.w1.bias)
        # A zero last layer makes the untrained rule "do nothing": training starts from stability.
        nn.init.zeros_(self.w2.weight)
        nn.init.zeros_(self.w2.bias)
        if config.goals:
            # Conditional models: a learned vector per goal, added to the hidden layer of every cell
            # that senses that goal (a per-sample goal, or a goal map that may differ by region);
            # "film" adds a second vector per goal that scales the hidden layer. They start at zero,
            # every goal the same rule: random vectors of the default scale drown what the cells
            # perceive, and the patterns died (docs/goals.md).
            self.goal_embedding = nn.Embedding(config.goals, hidden * (2 if config.conditioning == "film" else 1))
            nn.init.zeros_(self.goal_embedding.weight)

    def update(self, perception: torch.Tensor, goal: torch.Tensor | None = None) -> torch.Tensor:
        """Per-cell residual update from perception (N, bands*C) and, for a conditional model, each
        cell's goal (N,) long. -> (N, C)"""
        hidden = self.w1(perception)
        if goal is not None:
            hidden = condition(hidden, self.goal_embedding(goal), -1)
        return self.w2(torch.relu_(hidden))  # in place: the first layer's output is not kept

    def goal_map(self, goal: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        """A conditional model's goal as a per-cell map (B, *S) long: given per sample (B,) or per
        cell (B, *S). None for an unconditional model."""
        if not self.config.goals:
            return None
        if goal is None:
            raise NCAError("a conditional model needs a goal for every sample")
        goal = torch.as_tensor(goal, device=x.device).long()
        if goal.ndim == 1:
            goal = goal.view(-1, *[1] * (x.ndim - 2)).expand(x.shape[:-1])
        if goal.shape != x.shape[:-1] or goal.min() < 0 or goal.max() >= self.config.goals:
            raise NCAError(f"goals must be numbers from 0 to {self.config.goals - 1}, one per sample or per cell")
        return goal

    def step(self, x: torch.Tensor, fire: torch.Tensor | None = None, angle: float | None = None,
             generator: torch.Generator | None = None, goal: torch.Tensor | None = None) -> torch.Tensor:
        """One stochastic update of every cell. x: (B, *S, C); fire: (B, *S) bool or None.

        `angle` is the perception rotation in degrees (default: the config's). Without `fire`,
        cells fire with probability fire_rate drawn from `generator`. `goal` (conditional models
        only): (B,) or (B, *S) goal numbers.
        """
        cfg = self.config
        if fire is None:
            fire = torch.rand(x.shape[:-1], generator=generator, device=x.device) < cfg.fire_rate
        goal = self.goal_map(goal, x)
        if not cfg.alive_masking:
            return self._step_all(x, fire, angle, goal)
        pre = alive_mask(x, cfg.alive_threshold, cfg.padding)
        # Every cell outside the living region ends the step at zero, so the work is done on the
        # living region's bounding box plus one cell of neighbours, and the result zero-padded back.
        box = living_box(pre, cfg.padding)
        if box is None:
            return self._step_region(pad_grid(x, cfg.padding), pre, fire, angle, cfg.padding, goal)
        shape = tuple(x.shape[1:-1])
        # The box one cell larger is the region's padding: taken from the grid where it fits (the
        # cells there are outside the box, so neither updated nor read by a living cell), else zeros.
        outer = grow_box(box, shape)
        xp = crop(x, outer).clone() if outer is not None else pad_grid(crop(x, box), "zero")
        region = self._step_region(xp, crop(pre, box), crop(fire, box), angle, "zero",
                                   None if goal is None else crop(goal, box))
        return uncrop(region, box, shape)

    def _step_all(self, x: torch.Tensor, fire: torch.Tensor, angle: float | None,
                  goal: torch.Tensor | None) -> torch.Tensor:
        """A step without alive masking: every cell lives, those that fire update."""
        C = x.shape[-1]
        xp = pad_grid(x, self.config.padding)
        active = F.pad(fire, (1, 1) * (x.ndim - 2)).reshape(-1).nonzero().squeeze(1)
        update = self._update_cells(xp.reshape(-1, C), active, tuple(xp.shape[1:-1]), angle,
                                    _active_goals(goal, active))
        return xp.reshape(-1, C).index_add_(0, active, update).reshape(xp.shape)[spatial(xp)]

    def _step_region(self, xp: torch.Tensor, pre: torch.Tensor, fire: torch.Tensor, angle: float | None,
                     padding: str, goal: torch.Tensor | None = None) -> torch.Tensor:
        """One step of a region given padded by one cell, xp (B, *(S+2), C), a copy the step owns
        (updates land in it in place); pre, fire, goal: (B, *S). -> (B, *S, C)"""
        C, dims = xp.shape[-1], xp.ndim - 2
        # Cells are indexed by their place in the padded region: the neighbourhood of the cell at
        # flat index i is i + taps.
        active = F.pad(pre & fire, (1, 1) * dims).reshape(-1).nonzero().squeeze(1)  # (N,)
        update = self._update_cells(xp.reshape(-1, C), active, tuple(xp.shape[1:-1]), angle,
                                    _active_goals(goal, active))
        # In place: xp is this step's own padded copy, and the gather above keeps no reference to it.
        xp = xp.reshape(-1, C).index_add_(0, active, update).reshape(xp.shape)
        if padding == "zero":  # the border was not updated: the alive mask needs no new padding
            post = neighbourhood_max(xp[..., 3]) > self.config.alive_threshold
        else:
            post = alive_mask(xp[spatial(xp)], self.config.alive_threshold, padding)
        return xp[spatial(xp)] * (pre & post).unsqueeze(-1)

    def _update_cells(self, padded: torch.Tensor, active: torch.Tensor, padded_shape: tuple[int, ...],
                      angle: float | None, goal: torch.Tensor | None = None) -> torch.Tensor:
        """Updates of the cells at flat indices `active` of a padded grid (cells, C) of spatial shape
        `padded_shape`. -> (N, C)"""
        C = padded.shape[1]
        kernels = self.perception_matrix(angle, padded.device)  # (bands, taps)
        taps = flat_taps(padded_shape, padded.device)
        # Gathered tap-major, (taps, N, C), so that perception is one plain matrix multiply.
        patches = padded.index_select(0, (taps[:, None] + active).reshape(-1)).reshape(len(taps), -1)
        bands = kernels.shape[0]
        perception = (kernels @ patches).reshape(bands, -1, C).transpose(0, 1).reshape(-1, bands * C)  # band-major
        return self.update(perception, goal)

    def perception_matrix(self, angle: float | None, device: torch.device) -> torch.Tensor:
        """The perception kernels as a (bands, taps) matrix: the learned ones, or Sobel turned by
        `angle` degrees (default: the config's)."""
        cfg = self.config
        if cfg.perception == "learned":
            return self.perception_weight
        return tap_kernels(cfg.angle if angle is None else angle, device, cfg.dims, cfg.axis)

    def rollout(self, x: torch.Tensor, steps: int, angle: float | Sequence[float] | None = None,
                generator: torch.Generator | Sequence[torch.Generator] | None = None,
                on_step: StepHook | None = None, goal: GoalSchedule = None,
                fire: Callable[[int], torch.Tensor] | None = None) -> torch.Tensor:
        """Run `steps` updates from x (B, *S, C); returns the final state.

        on_step(k, x) is called with the state after k steps, for k = 0 (the start) to `steps`; what
        it returns (if not None) replaces the state, e.g. a wounded one. `angle` may be one angle
        per sample, and then `generator` one per sample too, so that each sample fires exactly as
        it would run alone. `goal` (conditional models): goal numbers (B,) or (B, *S), or a
        function of the step k (0-based) that returns them, so that the goal can change mid-run.
        `fire`, if given, is a function of k that returns the fire mask (B, *S) of step k+1 (else
        cells fire at random, drawn from `generator`).
        """
        per_sample = isinstance(angle, Sequence)
        generators = generator if isinstance(generator, Sequence) else [generator] * len(x)
        for k in range(steps + 1):
            if on_step is not None:
                replaced = on_step(k, x)
                x = x if replaced is None else replaced
            if k == steps:
                break
            g = goal(k) if callable(goal) else goal
            if per_sample:
                x = torch.cat([self.step(x[i : i + 1], angle=a, generator=generators[i],
                                         goal=None if g is None else _sample_goal(g, i))
                               for i, a in enumerate(angle)])
            else:
                x = self.step(x, None if fire is None else fire(k), angle=angle, generator=generator, goal=g)
        return x

    def forward(self, x: torch.Tensor, steps: int = 1) -> torch.Tensor:
        return self.rollout(x, steps)
