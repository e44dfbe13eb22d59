"""Measuring regeneration: how a grown pattern recovers from wounds, one at a time or in a sweep.

Recovery is judged on the RGBA loss against the model's target (or, for a model without one,
against the pattern just before the wound): a wounded pattern has recovered when its loss is back
within `tolerance` of the loss it had before the wound.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from .damage import apply_damage, circle_mask
from .engine import NCA
from .evaluate import grow_from_seed


@dataclass
class Recovery:
    """What one wound did: losses before, right after, and at the end, and when it healed."""

    step: int
    before: float
    after: float
    final: float
    recovered_at: int | None  # the step at which the loss came back within tolerance, or None


def recovery_from_losses(step: int, losses: list[float], before: float, after: float,
                         tolerance: float) -> Recovery:
    """losses[i] is the loss i+1 steps after the wound; the first within tolerance marks recovery."""
    healed = next((i + 1 for i, v in enumerate(losses) if v <= before + tolerance), None)
    final = losses[-1] if losses else after
    return Recovery(step=step, before=before, after=after, final=final,
                    recovered_at=None if healed is None else step + healed)


@dataclass
class SweepResult:
    """Trials of disc wounds of several radii at many points of the body, from several seeds."""

    tolerance: float
    grow_steps: int
    recover_steps: int
    grid: tuple[int, int]
    trials: list[dict] = field(default_factory=list)  # radius, row, col, seed, before, final, recovered, steps

    def by_radius(self) -> list[dict]:
        """Per radius: trials, recovery rate, median steps to recover (recovered trials), mean final loss."""
        rows = []
        for radius in sorted({t["radius"] for t in self.trials}):
            group = [t for t in self.trials if t["radius"] == radius]
            healed = [t["steps"] for t in group if t["recovered"]]
            rows.append({"radius": radius, "trials": len(group), "recovery_rate": len(healed) / len(group),
                         "median_steps": statistics.median(healed) if healed else None,
                         "mean_final_loss": sum(t["final"] for t in group) / len(group)})
        return rows

    def by_position(self) -> list[dict]:
        """Per wound centre: the share of trials (all radii and seeds) that recovered."""
        cells: dict[tuple[int, int], list[bool]] = {}
        for t in self.trials:
            cells.setdefault((t["row"], t["col"]), []).append(t["recovered"])
        return [{"row": r, "col": c, "recovery_rate": sum(v) / len(v)} for (r, c), v in sorted(cells.items())]

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "trials"},
                "by_radius": self.by_radius(), "by_position": self.by_position(), "trials": self.trials}


def body_positions(x: torch.Tensor, spacing: int) -> list[tuple[int, int]]:
    """Cells on a lattice of `spacing` where the grown pattern (H, W, C) is opaque (alpha > 0.5)."""
    H, W = x.shape[:2]
    return [(r, c) for r in range(spacing // 2, H, spacing) for c in range(spacing // 2, W, spacing)
            if x[r, c, 3] > 0.5]


@torch.inference_mode()
def sweep(model: NCA, target: torch.Tensor | None, grid: tuple[int, int], radii: list[float], spacing: int,
          seeds: int, grow_steps: int = 200, recover_steps: int = 200, tolerance: float = 0.002,
          batch: int = 32, on_progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Grow `seeds` patterns, wound each with a disc of every radius at every body position, let it heal.

    target: (H, W, 4) or None (then losses are against each pattern before its wound).
    on_progress(done, total) is called after each batch of trials.
    """
    device = next(model.parameters()).device
    H, W = grid
    generator = torch.Generator(device=device).manual_seed(0)
    grown = grow_from_seed(model, H, W, grow_steps, batch=seeds, generator=generator)
    plan = [(r, pos, s) for s in range(seeds) for pos in body_positions(grown[s], spacing) for r in radii]
    result = SweepResult(tolerance=tolerance, grow_steps=grow_steps, recover_steps=recover_steps, grid=(H, W))
    for start in range(0, len(plan), batch):
        chunk = plan[start : start + batch]
        x0 = grown[[s for _, _, s in chunk]]
        reference = target.to(device).expand(len(chunk), H, W, 4) if target is not None else x0[..., :4].clone()
        before = (x0[..., :4] - reference).square().mean(dim=(1, 2, 3))
        masks = circle_mask(H, W, torch.tensor([float(p[0]) for _, p, _ in chunk], device=device),
                            torch.tensor([float(p[1]) for _, p, _ in chunk], device=device),
                            torch.tensor([float(r) for r, _, _ in chunk], device=device))
        x = apply_damage(x0, masks)
        first_ok = torch.full((len(chunk),), -1, dtype=torch.long, device=device)
        for k in range(1, recover_steps + 1):
            x = model.step(x, generator=generator)
            loss = (x[..., :4] - reference).square().mean(dim=(1, 2, 3))
            first_ok[(first_ok < 0) & (loss <= before + tolerance)] = k
        final_ok = loss <= before + tolerance
        for i, (radius, (row, col), s) in enumerate(chunk):
            result.trials.append({"radius": radius, "row": row, "col": col, "seed": s,
                                  "before": float(before[i]), "final": float(loss[i]),
                                  "recovered": bool(final_ok[i]),
                                  "steps": int(first_ok[i]) if final_ok[i] else None})
        if on_progress is not None:
            on_progress(min(start + batch, len(plan)), len(plan))
    return result
