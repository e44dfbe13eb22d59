"""The live view: a pattern grown from the seed by the run's current weights, wounded by clicks.

It steps with its own random generator (the run's stays untouched, so that watching does not change
what is learned) and its own knobs: the share of cells that fire each step and the perception angle.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..engine import NCA, NCAConfig, seed_state
from ..errors import NCAError
from ..growth.damage import apply_damage, circle_mask
from ..training.config import MAX_ROLLOUT

DEFAULT_REGROW = 300  # live steps: 10 s at 30 steps a second
MAX_LIVE_SPEED = 240.0  # live steps per second at most


def check_live_knobs(fire_rate: float | None, angle: float | None, live_speed: float | None,
                     regrow: int | None) -> None:
    """The live view's knobs: fire rate in (0, 1], a finite angle, 1 to MAX_LIVE_SPEED steps a
    second, regrowing after 0 (never) to MAX_ROLLOUT steps."""
    if regrow is not None and not 0 <= regrow <= MAX_ROLLOUT:
        raise NCAError(f"the live view regrows after 0 (never) to {MAX_ROLLOUT:,} steps, got {regrow}")
    if fire_rate is not None and not 0 < fire_rate <= 1:
        raise NCAError(f"the live view's fire rate must be in (0, 1], got {fire_rate:g}")
    if angle is not None and not math.isfinite(angle):
        raise NCAError(f"the live view's angle must be a finite number of degrees, got {angle:g}")
    if live_speed is not None and not 1 <= live_speed <= MAX_LIVE_SPEED:
        raise NCAError(f"the live view runs 1 to {MAX_LIVE_SPEED:g} steps a second, got {live_speed:g}")


def straight_rgba(x: torch.Tensor) -> np.ndarray:
    """A state's picture with straight (not premultiplied) colour, as a browser canvas wants it.
    x: (H, W, C) float -> (H, W, 4) uint8."""
    alpha = x[..., 3:4].clamp(0.0, 1.0)
    colour = (x[..., :3].clamp(min=0.0) / alpha.clamp(min=1e-6)).clamp(0.0, 1.0)
    rgba = torch.cat([colour * (alpha > 0), alpha], dim=-1)
    return (rgba * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


class LiveView:
    """One pattern (1, H, W, C) stepped by whatever model it is given."""

    def __init__(self, config: NCAConfig, shape: tuple[int, int], device: torch.device, seed: int = 0):
        self.fire_rate = config.fire_rate  # probability that a cell updates in a step of the live view
        self.angle = 0.0  # perception rotation of the live view, degrees
        self.regrow = DEFAULT_REGROW  # steps after the seed (or the last wound) to start again (0: never)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.restarts = 0  # times the pattern died out and started again from the seed
        self.reset(config, shape, device)

    def reset(self, config: NCAConfig, shape: tuple[int, int], device: torch.device) -> None:
        """Back to one living cell in the centre of a grid of `shape`."""
        self.config, self.shape, self.device = config, tuple(shape), torch.device(device)
        self.x = seed_state(config, *shape, device=self.device)
        self.steps = 0  # since the seed
        self.quiet = 0  # steps since the seed or the last wound

    @torch.no_grad()
    def advance(self, model: NCA, steps: int) -> None:
        """Run `steps` steps. The pattern starts again from the seed when it died out, and every
        `regrow` steps after the seed or the last wound (so that the page shows the current weights
        growing it, not what early weights left behind)."""
        for _ in range(steps):
            if self.regrow and self.quiet >= self.regrow:
                self.reset(self.config, self.shape, self.device)
            fire = torch.rand(self.x.shape[:-1], generator=self.generator, device=self.device) < self.fire_rate
            self.x = model.step(self.x, fire=fire, angle=self.angle)
            self.steps += 1
            self.quiet += 1
        if steps and not bool((self.x[..., 3] > self.config.alive_threshold).any()):
            self.reset(self.config, self.shape, self.device)
            self.restarts += 1

    def wound(self, row: float, col: float, radius: float) -> None:
        """Kill the cells of a disc (centre and radius in cells)."""
        mask = circle_mask(*self.shape, torch.tensor([float(row)]), torch.tensor([float(col)]),
                           torch.tensor([float(radius)])).to(self.device)
        self.x = apply_damage(self.x, mask)
        self.quiet = 0

    def picture(self) -> np.ndarray:
        """(H, W, 4) uint8, straight alpha."""
        return straight_rgba(self.x[0])
