"""How well a model does its job: grow the target from the seed, and regrow it after a cut."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import NCA, rgba_loss, seed_state
from ..targets import Target
from .damage import apply_damage, body_point, circle_mask

GROW_STEPS = 200  # steps from the seed before the grown pattern is scored, and again after the cut
CUT_RADIUS = 10.0  # cells: the disc cut through the body before regrowth is scored


@dataclass
class Quality:
    """Mean RGBA losses over several runs: grown from the seed, and regrown after a cut."""

    grow_loss: float
    regrow_loss: float
    runs: int
    steps: int

    def to_dict(self) -> dict:
        return {"grow_loss": self.grow_loss, "regrow_loss": self.regrow_loss, "runs": self.runs,
                "steps": self.steps, "cut_radius": CUT_RADIUS}


@torch.inference_mode()
def grow_from_seed(model: NCA, height: int, width: int, steps: int, batch: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """`batch` patterns grown for `steps` steps from the seed on a height x width grid. -> (B, H, W, C)"""
    device = next(model.parameters()).device
    return model.rollout(seed_state(model.config, height, width, batch=batch, device=device), steps,
                         generator=generator)


@torch.inference_mode()
def measure_quality(model: NCA, target: Target, runs: int = 8, steps: int = GROW_STEPS,
                    seed: int = 0) -> Quality:
    """Grow `runs` patterns for `steps` steps, cut a disc of CUT_RADIUS through the body, regrow `steps`."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    goal = target.rgba.to(device)
    H, W = target.shape
    x = grow_from_seed(model, H, W, steps, batch=runs, generator=generator)
    grow = rgba_loss(x, goal)
    cy, cx = body_point(target.rgba[..., 3])
    cut = circle_mask(H, W, torch.tensor([cy]), torch.tensor([cx]), torch.tensor([CUT_RADIUS])).to(device)
    x = model.rollout(apply_damage(x, cut[0]), steps, generator=generator)
    regrow = rgba_loss(x, goal)
    return Quality(grow_loss=float(grow.mean()), regrow_loss=float(regrow.mean()), runs=runs, steps=steps)
