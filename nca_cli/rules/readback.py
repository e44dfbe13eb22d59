"""Reading a learned rule back: its transition for every neighbourhood, in the notation people use.

The configurations read are every one the family has where they can be listed (two to four
states: 512, 19,683 or 262,144), else those seen in the data with all their rotations and
reflections. The learned rule's transitions are then fitted to each family: the nearest B/S
(outer-totalistic) or Generations rule, the nearest Hensel (isotropic) rule, the nearest rule
table under each symmetry, and the distance to each is the number of configurations on which they
differ. The most compact exact notation is the first at distance 0 of B/S or Generations, Hensel, the
named table WireWorld, then a Golly table with the most symmetry it has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import NCA
from . import hensel
from .learned import predict, states_of
from .neighbourhoods import CENTRE, ENUMERABLE, all_codes, decode, with_square_images
from .notation import LifeLike, Rule, Table, WireWorld
from .tables import exact_symmetry, majority


@dataclass
class Fit:
    """How near the learned rule is to a family: differing transitions, and the nearest rule."""

    family: str
    distance: int
    nearest: Rule


@dataclass
class ReadBack:
    states: int
    codes: np.ndarray  # (M,) configurations read
    next: np.ndarray  # (M,) the learned rule's next states
    margins: np.ndarray  # (M,) how much the winning state's score beats the next one's
    seen: np.ndarray  # (M,) bool, seen in the data it was learned from
    complete: bool  # codes are every configuration there is
    fits: list[Fit]
    rule: Rule  # the most compact exact notation

    @property
    def table(self) -> Table:
        return Table(self.states, self.codes, self.next, exact_symmetry(self.states, self.codes, self.next))


def read_back(model: NCA, seen_codes: np.ndarray) -> ReadBack:
    """Read the learned rule of `model`; `seen_codes` are the configurations its data showed."""
    states = states_of(model)
    complete = states ** 9 <= ENUMERABLE
    codes = all_codes(states) if complete else with_square_images(seen_codes, states)
    next_states, margins = predict(model, codes)
    fits = family_fits(states, codes, next_states)
    exact = next((f.nearest for f in fits if f.distance == 0 and isinstance(f.nearest, LifeLike)), None)
    wireworld = WireWorld()  # the one named rule that is a table
    if exact is None and states == wireworld.states and np.array_equal(wireworld.next_state(decode(codes, 4)),
                                                                       next_states):
        exact = wireworld
    readback = ReadBack(states, codes, next_states, margins, np.isin(codes, seen_codes), complete, fits, exact)
    readback.rule = exact if exact is not None else readback.table
    return readback


def family_fits(states: int, codes: np.ndarray, next_states: np.ndarray) -> list[Fit]:
    """The nearest rule of each family to a table of transitions, nearest first within its kind."""
    fits = [nearest_life_like(states, codes, next_states, isotropic) for isotropic in (False, True)]
    for symmetry in ("permute", "rotate4reflect"):
        distance, chosen = majority(states, codes, next_states, symmetry)
        fits.append(Fit(f"table ({symmetry})", distance, Table(states, codes, chosen, symmetry)))
    return fits


def nearest_life_like(states: int, codes: np.ndarray, next_states: np.ndarray, isotropic: bool) -> Fit:
    """The B/S or Generations rule (isotropic: Hensel) nearest to a table: each count (or Hensel
    class) of live neighbours is a birth or survival condition if most of its configurations say so."""
    hoods = decode(codes, states)
    centre, after = hoods[:, CENTRE].astype(np.int64), next_states.astype(np.int64)
    classes = hensel.classes_of(hoods == 1)
    keys = classes if isotropic else np.array([int(name[0]) for name in hensel.CLASSES])[classes]
    ways = len(hensel.CLASSES) if isotropic else 9
    distance = int(((centre >= 2) & (after != (centre + 1) % states)).sum())
    chosen = {}
    for state, changed in ((0, 1), (1, 2 % states)):  # born (0 -> 1); dies (1 -> 0 or dying)
        votes = np.zeros((ways, 3), dtype=np.int64)  # stays, changes, neither
        mine = centre == state
        outcome = np.where(after[mine] == state, 0, np.where(after[mine] == changed, 1, 2))
        np.add.at(votes, (keys[mine], outcome), 1)
        flips = votes[:, 1] > votes[:, 0]
        distance += int(np.where(flips, votes[:, 0], votes[:, 1]).sum() + votes[:, 2].sum())
        chosen[state] = flips if state == 0 else ~flips
    birth, survive = (_conditions(chosen[s], isotropic) for s in (0, 1))
    rule = LifeLike(birth, survive, states)
    family = ("Hensel" if isotropic else "B/S") if states == 2 else ("Hensel Generations" if isotropic else "Generations")
    return Fit(family, distance, rule)


def _conditions(flags: np.ndarray, isotropic: bool) -> frozenset[str]:
    """Hensel classes of the counts or classes flagged."""
    if isotropic:
        return frozenset(name for name, on in zip(hensel.CLASSES, flags) if on)
    return frozenset(name for name in hensel.CLASSES if flags[int(name[0])])
