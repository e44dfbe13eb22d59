"""Transition tables: a rule's next state for a list of configurations, and its symmetries.

A table is two aligned arrays, sorted unique configuration codes (M,) int64 and next states (M,)
uint8. A symmetry groups configurations into classes ("permute": the same cell and the same
neighbours in any order; "rotate4reflect": the same up to rotating and mirroring the square); a
table has the symmetry when each class has one next state.
"""

from __future__ import annotations

import numpy as np

from .neighbourhoods import all_codes, canonical, decode
from .notation import Rule, Table

SYMMETRIES = ("permute", "rotate4reflect", "none")  # most to least symmetric


def tabulate(rule: Rule, codes: np.ndarray | None = None) -> Table:
    """A rule's transitions for `codes` (default: every configuration, where they can be listed)."""
    codes = all_codes(rule.states) if codes is None else np.unique(codes)
    next_states = rule.next_state(decode(codes, rule.states))
    return Table(rule.states, codes, next_states, exact_symmetry(rule.states, codes, next_states))


def majority(states: int, codes: np.ndarray, next_states: np.ndarray, symmetry: str) -> tuple[int, np.ndarray]:
    """The nearest table with `symmetry`: each class takes its most common next state (ties: the
    lowest state). Returns the number of transitions that differ from it, and its next states (M,)."""
    classes = np.unique(canonical(decode(codes, states), states, symmetry), return_inverse=True)[1].ravel()
    votes = np.zeros((classes.max(initial=-1) + 1, states), dtype=np.int64)
    np.add.at(votes, (classes, next_states.astype(np.int64)), 1)
    chosen = votes.argmax(axis=1)[classes].astype(np.uint8)
    return int((chosen != next_states).sum()), chosen


def exact_symmetry(states: int, codes: np.ndarray, next_states: np.ndarray) -> str:
    """The most symmetric of SYMMETRIES that the table has. Where the codes are not every
    configuration, only for the classes they cover."""
    return next(s for s in SYMMETRIES if s == "none" or majority(states, codes, next_states, s)[0] == 0)
