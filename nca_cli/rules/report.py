"""What a read-back rule says, as lines of text: agreement with a hand-written rule, the differences
and the unconstrained transitions written as rule notation, and the distance to each family.

Sets of configurations are written by the cell's state and the Hensel classes of its live (state
1) neighbours: for two states B6 is "a dead cell with six live neighbours", S2a "a live cell with two
adjacent live neighbours"; for more states "state 3 with 1e2" (every other neighbour state alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import hensel
from .neighbourhoods import CENTRE, decode, encode, square_images
from .notation import Rule, rule_name
from .readback import ReadBack


@dataclass
class Group:
    """Configurations with one cell state whose two rules agree among themselves on what they give."""

    centre: int
    learned: int
    other: int  # the other rule's state (or -1: none)
    classes: frozenset[str]
    count: int

    def where(self, states: int) -> str:
        conditions = hensel.format_conditions(self.classes)
        if states == 2:
            return f"{'B' if self.centre == 0 else 'S'}{conditions}"
        return f"state {self.centre} with live neighbours {conditions}"


def groups(codes: np.ndarray, learned: np.ndarray, other: np.ndarray, states: int) -> list[Group]:
    """Configurations (M,) grouped by cell state, the two next states, and live-neighbour classes."""
    hoods = decode(codes, states)
    classes = hensel.classes_of(hoods == 1)
    keys = np.stack([hoods[:, CENTRE], learned, other], axis=1).astype(np.int64)
    found = []
    for key in np.unique(keys, axis=0):
        mine = (keys == key).all(axis=1)
        names = frozenset(hensel.CLASSES[i] for i in np.unique(classes[mine]))
        found.append(Group(int(key[0]), int(key[1]), int(key[2]), names, int(mine.sum())))
    return found


def describe(rule: Rule) -> str:
    """A rule's notation, with its name where it has one: "B3/S23 (life)"."""
    name = rule_name(rule)
    return rule.notation if name is None or name == rule.notation else f"{rule.notation} ({name})"


def agreement_lines(readback: ReadBack, rule: Rule) -> list[str]:
    """How many configurations the learned rule and `rule` agree on, and where they differ."""
    theirs = rule.next_state(decode(readback.codes, readback.states))
    differ = theirs != readback.next
    total = len(readback.codes)
    lines = [f"Agreement with {describe(rule)}: {total - int(differ.sum())}/{total} neighbourhoods"]
    for group in groups(readback.codes[differ], readback.next[differ], theirs[differ], readback.states):
        lines.append(f"  {group.where(readback.states)} ({group.count}): the learned rule gives {group.learned}, "
                     f"{rule.notation} gives {group.other}")
    return lines


def fit_lines(readback: ReadBack) -> list[str]:
    """The distance to the nearest rule of each family."""
    lines = ["Nearest rule of each family (transitions that differ):"]
    width = max(len(fit.family) for fit in readback.fits)
    for fit in readback.fits:
        nearest = f"  {fit.nearest.notation}" if fit.family[:5] != "table" else ""
        lines.append(f"  {fit.family:<{width}}  {fit.distance:>6}{nearest}")
    return lines


def unconstrained_lines(readback: ReadBack) -> list[str]:
    """Configurations the data never showed, and what the learned rule does with them."""
    unseen = ~readback.seen
    total, count = len(readback.codes), int(unseen.sum())
    if count == 0:
        return [f"Every one of the {total} neighbourhoods was observed in the data: none is unconstrained"]
    seen_orbits = set(_orbits(readback.codes[readback.seen], readback.states).tolist())
    alone = np.array([o not in seen_orbits for o in _orbits(readback.codes[unseen], readback.states)], dtype=bool)
    lines = [f"Unconstrained by the data: {count} of {total} neighbourhoods were never observed; "
             f"{int(alone.sum())} of them not even turned or mirrored. The learned rule's guesses, by the "
             f"classes they fall in:"]
    for group in groups(readback.codes[unseen], readback.next[unseen], readback.next[unseen], readback.states):
        lines.append(f"  {group.where(readback.states)} ({group.count}): gives {group.learned}")
    return lines


def _orbits(codes: np.ndarray, states: int) -> np.ndarray:
    """The smallest code among each configuration's rotations and reflections. (M,)"""
    return encode(square_images(decode(codes, states)), states).min(axis=0)
