"""Golly rule files (@RULE / @TABLE), which Golly's RuleLoader algorithm and `bgolly` load.

A table line is `C,N,NE,E,SE,S,SW,W,NW,C'`: a cell in state C with those neighbours becomes C'.
Variables (`var a={0,1,2}`) stand for any of their states, each bound on its own within a line;
`symmetries:permute` makes a line match its neighbours in any order, `rotate4reflect` any rotation
or reflection. Configurations no line matches stay unchanged. Golly finds `Foo.rule` for the rule
`Foo` in its rules folders (`bgolly -s <folder>/`), and the name inside must match the file name.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import NCAError
from . import hensel
from .neighbourhoods import CENTRE, POSITIONS, canonical, decode
from .notation import LifeLike, Rule, Table
from .tables import tabulate

GOLLY_ORDER = [POSITIONS.index(p) for p in ("C", "N", "NE", "E", "SE", "S", "SW", "W", "NW")]


def check_rule_name(name: str) -> str:
    """Golly's advice for rule names: letters, digits, hyphens and underscores."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise NCAError(f"invalid Golly rule name {name!r}: use letters, digits, '-' and '_', starting with a letter")
    return name


def rule_file(rule: Rule, name: str, description: str = "") -> str:
    """The text of `name`.rule: @RULE, a description, @TABLE."""
    check_rule_name(name)
    if isinstance(rule, LifeLike):
        symmetry, body = _life_like_table(rule)
    else:
        table = rule if isinstance(rule, Table) else tabulate(rule)
        symmetry, body = table.symmetry, _listed_table(table)
    head = [f"@RULE {name}", "", *(description.splitlines() or [f"The rule {rule.notation}."]), "", "@TABLE",
            f"n_states:{rule.states}", "neighborhood:Moore", f"symmetries:{symmetry}"]
    return "\n".join(head + body) + "\n"


def _variables(rule: LifeLike) -> list[str]:
    """any0..any7: every state; dead0..dead7: every state but 1 (each position needs its own)."""
    every = ",".join(str(s) for s in range(rule.states))
    not_alive = ",".join(str(s) for s in range(rule.states) if s != 1)
    return [f"var any{i}={{{every}}}" for i in range(8)] + [f"var dead{i}={{{not_alive}}}" for i in range(8)]


def _life_like_table(rule: LifeLike) -> tuple[str, list[str]]:
    """Lines for births, deaths and (Generations) dying states: one per neighbour count for a
    totalistic rule (under permute symmetry), else one per Hensel class (under rotate4reflect)."""
    lines = _variables(rule)
    for state in range(2, rule.states):  # dying cells step on whatever their neighbours are
        lines.append(",".join([str(state)] + [f"any{i}" for i in range(8)] + [str((state + 1) % rule.states)]))
    shapes = {str(n): _alive_slots_of_count(n) for n in range(9)} if rule.totalistic else \
        {name: _alive_slots_of_class(name) for name in hensel.CLASSES}
    for shape, alive in shapes.items():
        if _members(shape) <= rule.birth:
            lines.append(_line(0, alive, "1"))
    for shape, alive in shapes.items():
        if not _members(shape) & rule.survive:
            lines.append(_line(1, alive, str(2 % rule.states)))
    return ("permute" if rule.totalistic else "rotate4reflect"), lines


def _members(shape: str) -> set[str]:
    """The Hensel classes of a count ("3") or class ("3a")."""
    return {c for c in hensel.CLASSES if c == shape or (len(shape) == 1 and c[0] == shape)}


def _alive_slots_of_count(count: int) -> set[int]:
    return set(range(count))  # under permute symmetry, any `count` neighbours


def _alive_slots_of_class(name: str) -> set[int]:
    """Golly's neighbour slots (0 = N ... 7 = NW) live in a Hensel class's shape."""
    bits = hensel.shape_code(int(name[0]), name[1:])
    return {i for i, p in enumerate(GOLLY_ORDER[1:]) if bits >> (8 - p) & 1}


def _line(centre: int, alive: set[int], result: str) -> str:
    cells = ["1" if i in alive else f"dead{i}" for i in range(8)]
    return ",".join([str(centre)] + cells + [result])


def _listed_table(table: Table) -> list[str]:
    """One line per class of the table's symmetry whose cell changes."""
    hoods = decode(table.codes, table.states)
    _, first = np.unique(canonical(hoods, table.states, table.symmetry), return_index=True)
    lines = []
    for i in np.sort(first):
        if table.next[i] != hoods[i, CENTRE]:
            lines.append(",".join(str(int(s)) for s in hoods[i, GOLLY_ORDER]) + f",{int(table.next[i])}")
    return lines
