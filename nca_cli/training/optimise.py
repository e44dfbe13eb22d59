"""What every training loop of the project shares (`Trainer` here, `VideoTrainer` for clips): the
recipe's gradient normalisation, and the iteration a time budget brings the rate drop forward to."""

from __future__ import annotations

import math

import torch

# A budget-bound run drops its rate no earlier than this share of `lr_decay_at`: the fewest
# full-rate iterations that gave a good lizard were 730 of 2450 (docs/training-recipe.md).
EARLIEST_DROP_SHARE = 0.3


def normalise_gradients(model: torch.nn.Module) -> bool:
    """Scale each parameter's gradient to unit norm (the Growing-NCA recipe). False if not finite."""
    for p in model.parameters():
        if p.grad is None:
            continue
        if not torch.isfinite(p.grad).all():
            return False
        p.grad /= p.grad.norm() + 1e-8
    return True


def earliest_drop(lr_decay_at: int) -> int:
    """The earliest iteration a time budget may bring the rate drop forward to."""
    return math.ceil(EARLIEST_DROP_SHARE * lr_decay_at)


def budget_drop(decay_from: int, iteration: int, elapsed: float, time_budget: float, decay_fraction: float,
                lr_decay_at: int) -> int:
    """The drop iteration after a check at `iteration`: brought forward to it once `elapsed` (s)
    passes `decay_fraction` of the budget, as the schedule would drop at that share of its
    iterations, but never before `earliest_drop`."""
    if elapsed >= decay_fraction * time_budget and iteration >= earliest_drop(lr_decay_at):
        return min(decay_from, iteration)
    return decay_from
