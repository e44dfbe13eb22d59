"""Rules as people write them: B/S, Generations B/S/C, Hensel notation, named rules, tables.

Every rule has `states`, a `family`, a `notation` (what `parse_rule` reads back) and
`next_state(hoods)`, its transition for neighbourhoods (M, 9) in neighbourhoods.POSITIONS order.

- LifeLike: birth and survival conditions on the live (state 1) neighbours, as Hensel classes, so
  one type covers B/S (outer-totalistic, 2 states), Hensel (isotropic non-totalistic) and
  Generations (states 2.. are dying: each step one further, the last back to 0).
- WireWorld: the named four-state rule (0 empty, 1 electron head, 2 tail, 3 conductor; Golly's order).
- Table: a transition per listed configuration, the rest unchanged (a Golly rule table).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from ..errors import NCAError
from . import hensel
from .neighbourhoods import CENTRE, check_states, encode

EXPECTED = ("expected B/S notation (B3/S23), Generations (B2/S/C3 or Golly's /2/3), Hensel notation "
            "(B2-a/S12) or a named rule ({names})")


@dataclass(frozen=True)
class LifeLike:
    """Born where the live neighbours are in `birth`, survives where in `survive` (Hensel classes)."""

    birth: frozenset[str]
    survive: frozenset[str]
    states: int = 2

    @property
    def totalistic(self) -> bool:
        return hensel.is_totalistic(self.birth) and hensel.is_totalistic(self.survive)

    @property
    def family(self) -> str:
        if self.totalistic:
            return "B/S" if self.states == 2 else "Generations"
        return "Hensel" if self.states == 2 else "Hensel Generations"

    @property
    def notation(self) -> str:
        text = f"B{hensel.format_conditions(self.birth)}/S{hensel.format_conditions(self.survive)}"
        return text if self.states == 2 else f"{text}/C{self.states}"

    @functools.cached_property
    def _conditions(self) -> tuple[np.ndarray, np.ndarray]:
        """Born and survives, for each 9-bit code of where the live cells are. (512,) bool each"""
        classes = hensel.CLASS_OF_CODE
        return (np.isin(classes, [hensel.CLASSES.index(c) for c in self.birth]),
                np.isin(classes, [hensel.CLASSES.index(c) for c in self.survive]))

    def next_state(self, hoods: np.ndarray) -> np.ndarray:
        """(M, 9) -> (M,) uint8"""
        live = (hoods == 1).astype(np.int64) @ (1 << np.arange(8, -1, -1))
        born, stays = (table[live] for table in self._conditions)
        centre = hoods[:, CENTRE].astype(np.int64)
        dying = 2 % self.states  # 2 with Generations, 0 with two states
        after = np.where(centre == 0, born.astype(np.int64), np.where(stays, 1, dying))
        return np.where(centre >= 2, (centre + 1) % self.states, after).astype(np.uint8)


@dataclass(frozen=True)
class WireWorld:
    """Heads become tails, tails conductors, conductors heads next to one or two heads."""

    states: int = 4
    family: str = "table"
    notation: str = "wireworld"

    def next_state(self, hoods: np.ndarray) -> np.ndarray:
        """(M, 9) -> (M,) uint8"""
        centre = hoods[:, CENTRE]
        heads = (hoods == 1).sum(axis=1) - (centre == 1)
        fires = (centre == 3) & ((heads == 1) | (heads == 2))
        return np.select([centre == 1, centre == 2, fires], [2, 3, 1], centre.astype(np.int64)).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class Table:
    """Transitions of listed configurations (sorted unique codes); any other cell stays as it is."""

    states: int
    codes: np.ndarray  # (M,) int64, sorted
    next: np.ndarray  # (M,) uint8
    symmetry: str = "none"  # the symmetry the transitions have, for writing them compactly
    family: str = "table"

    @property
    def notation(self) -> str:
        return f"a table of {self.states} states ({len(self.codes)} configurations, symmetries {self.symmetry})"

    def next_state(self, hoods: np.ndarray) -> np.ndarray:
        """(M, 9) -> (M,) uint8"""
        if len(self.codes) == 0:
            return hoods[:, CENTRE].copy()
        codes = encode(hoods, self.states)
        at = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        listed = self.codes[at] == codes
        return np.where(listed, self.next[at], hoods[:, CENTRE]).astype(np.uint8)


Rule = LifeLike | WireWorld | Table

NAMED = {
    "life": "B3/S23", "highlife": "B36/S23", "seeds": "B2/S", "daynight": "B3678/S34678",
    "brians-brain": "B2/S/C3", "star-wars": "B2/S345/C4", "replicator": "B1357/S1357",
    "maze": "B3/S12345", "life-without-death": "B3/S012345678",
}
ALIASES = {"conway": "life", "day-and-night": "daynight", "briansbrain": "brians-brain", "brain": "brians-brain"}
NAMES = (*NAMED, "wireworld")


def parse_rule(text: str, where: str = "") -> Rule:
    """A rule from its notation or name. Raises NCAError naming the notations it reads; `where`
    says where the text came from (" in the header of glider.rle")."""
    key = re.sub(r"[\s_']", "-", text.strip().lower()).replace("brian-s", "brians")
    key = ALIASES.get(key, key)
    if key == "wireworld":
        return WireWorld()
    if key in NAMED:
        return parse_rule(NAMED[key])
    try:
        return _parse_life_like(text.strip())
    except NCAError as exc:
        raise NCAError(f"invalid rule {text!r}{where}: {exc}") from None


def rule_name(rule: Rule) -> str | None:
    """The name of a named rule ("life"), or None."""
    if isinstance(rule, WireWorld):
        return "wireworld"
    return next((name for name, notation in NAMED.items() if notation == rule.notation), None)


_BS = re.compile(r"B([0-8a-z-]*)/?S([0-8a-z-]*)(?:/C?(\d+))?", re.IGNORECASE)
_SB = re.compile(r"([0-8a-z-]*)/([0-8a-z-]*)(?:/(\d+))?", re.IGNORECASE)  # Golly's S/B/C order


def _parse_life_like(text: str) -> LifeLike:
    bs, sb = _BS.fullmatch(text), _SB.fullmatch(text)
    if not (bs or sb):
        raise NCAError(EXPECTED.format(names=", ".join(NAMES)))
    birth, survive, states = (bs.group(1), bs.group(2), bs.group(3)) if bs else (sb.group(2), sb.group(1), sb.group(3))
    states = check_states(int(states)) if states else 2
    return LifeLike(hensel.parse_conditions(birth.lower()), hensel.parse_conditions(survive.lower()), states)
