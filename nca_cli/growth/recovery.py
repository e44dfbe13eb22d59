"""Measuring regeneration: how a grown pattern recovers from wounds, one run at a time or in a sweep.

Recovery is judged on the RGBA loss against the model's target (or, for a model without one,
against the pattern just before the wound): a wounded pattern has recovered when its loss is back
within `tolerance` of the loss it had before the wound while some of its cells still live (a pattern
that died has not recovered, however close an empty grid's loss is to a young pattern's).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from ..engine import NCA, alive_mask, render_rgb
from ..engine.config import FLOAT
from ..errors import InvalidOption, NCAError
from ..formats.plots import save_sweep_plot
from ..runtime.distributed import SINGLE, World, shard, summed
from ..runtime.limits import check_memory, check_steps
from ..voxels.render import body_view
from .damage import Wound, apply_damage, ball_mask
from .quality import GROW_STEPS, grow_from_seed
from .run import RenderOptions, render_run

WOUND_MARK_STEPS = 15  # frames after a wound on which its outline is drawn, as the article's demo does
WOUND_COLOUR = (230, 30, 30)
DEFAULT_TOLERANCE = 0.002
MAX_SWEEP_SEEDS, MAX_SWEEP_RADII = 64, 100
SWEEP_SEED = 1  # batch i of a sweep's trials fires from a generator seeded SWEEP_SEED + i


def check_tolerance(tolerance: float) -> None:
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InvalidOption("tolerance", f"must be a number of at least 0, got {tolerance:g}")


def check_sweep(grid: tuple[int, ...], radii: list[float], spacing: int, seeds: int, recover_steps: int,
                tolerance: float) -> None:
    """Refuse sweeps that make no sense or would take absurdly long, before growing anything."""
    check_tolerance(tolerance)
    if spacing < 1 or seeds < 1 or recover_steps < 1:
        raise NCAError("spacing, seeds and recover steps must be at least 1")
    if seeds > MAX_SWEEP_SEEDS:
        raise InvalidOption("seeds", f"must be at most {MAX_SWEEP_SEEDS}, got {seeds}")
    if not radii or len(radii) > MAX_SWEEP_RADII or not all(math.isfinite(r) and r >= 0 for r in radii):
        raise InvalidOption("radii", f"must be 1 to {MAX_SWEEP_RADII} finite radii of at least 0, got {len(radii)}")
    check_steps(recover_steps)


@dataclass
class Recovery:
    """What one wound did: losses before, right after, and at the end, and when it healed."""

    step: int
    before: float
    after: float
    final: float
    recovered_at: int | None  # the step at which the loss came back within tolerance, or None
    died: bool = False  # no cell lived at the end (of the run, or before the next wound)


def recovery_from_losses(step: int, losses: list[float], before: float, after: float,
                         tolerance: float, alive: list[bool] | None = None) -> Recovery:
    """losses[i] is the loss i+1 steps after the wound, alive[i] whether any cell lived then (None:
    all did); the first within tolerance of a living pattern marks recovery."""
    alive = [True] * len(losses) if alive is None else alive
    healed = next((i + 1 for i, (v, living) in enumerate(zip(losses, alive)) if living and v <= before + tolerance),
                  None)
    final = losses[-1] if losses else after
    return Recovery(step=step, before=before, after=after, final=final,
                    recovered_at=None if healed is None else step + healed, died=bool(alive) and not alive[-1])


def wound_outline(mask: np.ndarray) -> np.ndarray:
    """Where a wound is drawn: on a picture (H, W) the cells on the edge of the mask; in a voxel body
    (D, H, W), whose cut cells are empty space, the cells just outside it (the cut's surface)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner, outer = mask.copy(), np.zeros_like(mask)
    for offset in np.ndindex(*(3,) * mask.ndim):
        shifted = padded[tuple(slice(o, o + n) for o, n in zip(offset, mask.shape))]
        inner &= shifted
        outer |= shifted
    return mask & ~inner if mask.ndim == 2 else outer & ~mask


@dataclass
class WoundReport:
    """The outcome of wound_experiment: one Recovery per wound, what losses were measured against,
    and the final state (B, *S, C)."""

    recoveries: list[Recovery]
    against: str  # "the target" or "the pattern before the first wound"
    final_state: torch.Tensor


def wound_experiment(model: NCA, x: torch.Tensor, wound: Wound, wound_steps: list[int], options: RenderOptions,
                     target: torch.Tensor | None = None, tolerance: float = DEFAULT_TOLERANCE,
                     on_progress: Callable[[int, int], None] | None = None) -> WoundReport:
    """Run from x (1, *S, C), wound it after each of `wound_steps` steps, keep running, and
    measure how each wound heals; the run's frames go to options.output (if any), the wound's
    outline drawn on the frames just after it.

    target: (*S, 4) to measure losses against, or None: the pattern just before the first wound.
    """
    check_tolerance(tolerance)
    wound_steps = sorted(set(wound_steps))
    outside = [k for k in wound_steps if not 0 <= k < options.steps]
    if not wound_steps or outside:
        raise NCAError(f"wound steps must be between 0 and {options.steps - 1}, got "
                       f"{outside[0] if outside else 'none'}")
    generator = torch.Generator(device=x.device).manual_seed(options.seed + 1)
    reference = {"rgba": None if target is None else target.to(x.device)}
    losses: list[float] = []  # losses[k - 1]: after step k
    alive: list[bool] = []  # alive[k - 1]: whether any cell lived after step k
    events: dict[int, dict] = {}

    def loss_of(state: torch.Tensor) -> float:
        return float((state[0, ..., :4] - reference["rgba"]).square().mean())

    def on_step(k: int, state: torch.Tensor) -> torch.Tensor | None:
        if k:
            losses.append(loss_of(state) if reference["rgba"] is not None else float("nan"))
            alive.append(bool(alive_mask(state, model.config.alive_threshold, model.config.padding).any()))
        if k not in wound_steps:
            return None
        if reference["rgba"] is None:  # no target: compare with the pattern before the first wound
            reference["rgba"] = state[0, ..., :4].clone()
        before = loss_of(state)
        masks = wound.masks(state, model.config.alive_threshold, generator=generator)
        state = apply_damage(state, masks)
        events[k] = {"before": before, "after": loss_of(state), "outline": wound_outline(masks[0].cpu().numpy())}
        return state

    def decorate(k: int, rgb: np.ndarray) -> np.ndarray:
        for step, event in events.items():
            if step <= k < step + WOUND_MARK_STEPS:
                rgb = rgb.copy()
                rgb[:, event["outline"]] = WOUND_COLOUR
        return rgb

    final = render_run(model, x, options, on_step=on_step, decorate=decorate, on_progress=on_progress)
    bounds = wound_steps[1:] + [options.steps]
    recoveries = [recovery_from_losses(k, losses[k:end], events[k]["before"], events[k]["after"], tolerance,
                                       alive[k:end]) for k, end in zip(wound_steps, bounds)]
    return WoundReport(recoveries, "the target" if target is not None else "the pattern before the first wound",
                       final)


def position_keys(dims: int) -> tuple[str, ...]:
    """How a sweep names a wound centre's coordinates: row, col on a picture; d, h, w in a voxel body."""
    return ("row", "col") if dims == 2 else ("d", "h", "w")


@dataclass
class SweepResult:
    """Trials of disc (ball) wounds of several radii at many points of the body, from several seeds."""

    tolerance: float
    grow_steps: int
    recover_steps: int
    grid: tuple[int, ...]
    trials: list[dict] = field(default_factory=list)  # radius, row, col (d, h, w), seed, before, final, recovered, steps

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
        keys = position_keys(len(self.grid))
        cells: dict[tuple[int, ...], list[bool]] = {}
        for t in self.trials:
            cells.setdefault(tuple(t[k] for k in keys), []).append(t["recovered"])
        return [{**dict(zip(keys, p)), "recovery_rate": sum(v) / len(v)} for p, v in sorted(cells.items())]

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "trials"},
                "by_radius": self.by_radius(), "by_position": self.by_position(), "trials": self.trials}


def body_positions(x: torch.Tensor, spacing: int) -> list[tuple[int, ...]]:
    """Cells on a lattice of `spacing` where the grown pattern (*S, C) is opaque (alpha > 0.5)."""
    lattice = x[tuple(slice(spacing // 2, None, spacing) for _ in x.shape[:-1])][..., 3] > 0.5
    return [tuple(spacing // 2 + spacing * int(i) for i in cell) for cell in lattice.nonzero().tolist()]


@torch.inference_mode()
def sweep(model: NCA, target: torch.Tensor | None, grid: tuple[int, ...], radii: list[float], spacing: int,
          seeds: int, grow_steps: int = GROW_STEPS, recover_steps: int = 200, tolerance: float = DEFAULT_TOLERANCE,
          batch: int = 32, on_progress: Callable[[int, int], None] | None = None,
          world: World = SINGLE) -> SweepResult:
    """Grow `seeds` patterns, wound each with a disc (a ball in a voxel body) of every radius at every
    body position, let it heal.

    grid: (H, W) or (D, H, W); target: (*grid, 4) or None (then losses are against each pattern
    before its wound). on_progress(done, total) is called after each batch of trials. Each batch
    fires from a generator of its own, so the trials come out the same however they are split:
    with `world`, the ranks share the batches and every rank gets the whole report.
    """
    device = next(model.parameters()).device
    cells = math.prod(grid)
    check_sweep(grid, radii, spacing, seeds, recover_steps, tolerance)
    check_memory(FLOAT * model.config.channels * cells * seeds + model.config.step_bytes(cells, max(batch, seeds)),
                 f"a sweep of {seeds} patterns on a {'x'.join(map(str, grid))} grid", device)
    generator = torch.Generator(device=device).manual_seed(0)
    grown = grow_from_seed(model, *grid, steps=grow_steps, batch=seeds, generator=generator)
    plan = [(r, pos, s) for s in range(seeds) for pos in body_positions(grown[s], spacing) for r in radii]
    result = SweepResult(tolerance=tolerance, grow_steps=grow_steps, recover_steps=recover_steps, grid=tuple(grid))
    starts = list(range(0, len(plan), batch))
    scores = torch.zeros(len(plan), 4, dtype=torch.float64)  # before, final, recovered, steps (-1: never)
    for n, i in enumerate(shard(len(starts), world)):
        start = starts[i]
        chunk_generator = torch.Generator(device=device).manual_seed(SWEEP_SEED + i)
        scores[start : start + batch] = _sweep_chunk(model, grown, target, plan[start : start + batch],
                                                     recover_steps, tolerance, chunk_generator)
        if on_progress is not None:
            on_progress(min((n + 1) * batch * world.size, len(plan)), len(plan))
    scores = summed(scores, world)
    keys = position_keys(len(grid))
    result.trials = [{"radius": radius, **dict(zip(keys, position)), "seed": s, "before": float(before),
                      "final": float(final), "recovered": bool(ok), "steps": int(steps) if ok else None}
                     for (radius, position, s), (before, final, ok, steps) in zip(plan, scores.tolist())]
    return result


def _sweep_chunk(model: NCA, grown: torch.Tensor, target: torch.Tensor | None, chunk: list, recover_steps: int,
                 tolerance: float, generator: torch.Generator) -> torch.Tensor:
    """Wound, heal and score one batch of trials (radius, (row, col) or (d, h, w), seed). -> (trials, 4)
    float64: the loss before the wound, the final loss, recovered (0 or 1), steps to recover."""
    device, shape = grown.device, tuple(grown.shape[1:-1])
    x0 = grown[[s for _, _, s in chunk]]
    reference = target.to(device).expand(len(chunk), *shape, 4) if target is not None else x0[..., :4].clone()
    every = tuple(range(1, len(shape) + 2))
    before = (x0[..., :4] - reference).square().mean(dim=every)
    masks = ball_mask(shape, torch.tensor([[float(c) for c in p] for _, p, _ in chunk], device=device),
                      torch.tensor([float(r) for r, _, _ in chunk], device=device))
    first_ok = torch.full((len(chunk),), -1, dtype=torch.long, device=device)
    loss, ok = before, torch.ones(len(chunk), dtype=torch.bool, device=device)

    def on_step(k: int, x: torch.Tensor) -> None:
        nonlocal loss, ok
        if k:
            loss = (x[..., :4] - reference).square().mean(dim=every)
            living = alive_mask(x, model.config.alive_threshold, model.config.padding).flatten(1).any(1)
            ok = (loss <= before + tolerance) & living  # a pattern that died has not recovered
            first_ok[(first_ok < 0) & ok] = k

    model.rollout(apply_damage(x0, masks), recover_steps, generator=generator, on_step=on_step)
    final_ok = ok
    return torch.stack([before, loss, final_ok.to(loss.dtype), first_ok.to(loss.dtype)], dim=1).double().cpu()


@torch.inference_mode()
def plot_sweep(path, model: NCA, result: SweepResult) -> None:
    """The sweep's plot: recovery rate against radius, and recovery by wound centre drawn over the
    grown pattern (a picture) or over a view of the grown body (voxels), written to `path` (PNG)."""
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(0)
    grown = grow_from_seed(model, *result.grid, steps=result.grow_steps, generator=generator)
    by_position = result.by_position()
    if len(result.grid) == 2:
        save_sweep_plot(path, result.by_radius(), by_position, render_rgb(grown[0]).cpu().numpy())
        return
    centres = np.array([[p[k] for k in position_keys(3)] for p in by_position], dtype=np.float32).reshape(-1, 3)
    view, pixels = body_view(grown[0], centres)
    markers = [(row, col, p["recovery_rate"]) for (row, col), p in zip(pixels.tolist(), by_position)]
    save_sweep_plot(path, result.by_radius(), [], view, scale=1, markers=markers)
