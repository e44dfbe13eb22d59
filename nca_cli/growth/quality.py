"""How well a model does its job: grow the target from the seed, and regrow it after a cut."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..engine import NCA, rgba_loss, seed_state
from ..targets import Target
from ..voxels.metrics import body_scores
from .damage import apply_damage, ball_mask, body_point

GROW_STEPS = 200  # steps from the seed before the grown pattern is scored, and again after the cut
CUT_RADIUS = 10.0  # cells: the disc cut through a 2D body before regrowth is scored
CUT_FRACTION_3D = 0.25  # a 3D body is cut by a ball of this fraction of its longest side


@dataclass
class Quality:
    """Mean RGBA losses over several runs: grown from the seed, and regrown after a cut; for a
    voxel body also the occupancy IoU and colour error of both (`voxels`: grown_iou,
    grown_colour_mse, regrown_iou, regrown_colour_mse)."""

    grow_loss: float
    regrow_loss: float
    runs: int
    steps: int
    cut_radius: float = CUT_RADIUS
    voxels: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"grow_loss": self.grow_loss, "regrow_loss": self.regrow_loss, "runs": self.runs,
                "steps": self.steps, "cut_radius": self.cut_radius, **self.voxels}


def cut_radius(target: Target) -> float:
    """The wound the quality measurement cuts: CUT_RADIUS cells through a picture, a ball of
    CUT_FRACTION_3D of the body's longest side through a 3D body."""
    if target.rgba.ndim == 3:
        return CUT_RADIUS
    solid = (target.rgba[..., 3] > 0.1).nonzero()
    extent = (solid.max(0).values - solid.min(0).values + 1).max() if len(solid) else max(target.shape)
    return float(max(1.5, CUT_FRACTION_3D * float(extent)))


@torch.inference_mode()
def grow_from_seed(model: NCA, *shape: int, steps: int, batch: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """`batch` patterns grown for `steps` steps from the seed on a grid of `shape`. -> (B, *shape, C)"""
    device = next(model.parameters()).device
    return model.rollout(seed_state(model.config, *shape, batch=batch, device=device), steps, generator=generator)


@torch.inference_mode()
def measure_quality(model: NCA, target: Target, runs: int = 8, steps: int = GROW_STEPS,
                    seed: int = 0) -> Quality:
    """Grow `runs` patterns for `steps` steps, cut a disc (ball) of cut_radius(target) through the
    body at body_point, regrow `steps`."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    goal = target.rgba.to(device)
    x = grow_from_seed(model, *target.shape, steps=steps, batch=runs, generator=generator)
    grow = rgba_loss(x, goal)
    radius = cut_radius(target)
    centre = torch.tensor([body_point(target.rgba[..., 3])])
    cut = ball_mask(target.shape, centre, torch.tensor([radius])).to(device)
    voxels = {f"grown_{k}": v for k, v in body_scores(x, goal).items()} if target.dims == 3 else {}
    x = model.rollout(apply_damage(x, cut[0]), steps, generator=generator)
    regrow = rgba_loss(x, goal)
    if target.dims == 3:
        voxels.update({f"regrown_{k}": v for k, v in body_scores(x, goal).items()})
    return Quality(grow_loss=float(grow.mean()), regrow_loss=float(regrow.mean()), runs=runs, steps=steps,
                   cut_radius=radius, voxels=voxels)
