"""Patterns in Golly's and LifeWiki's run-length encoded format (.rle), in and out.

    #C a glider
    x = 3, y = 3, rule = B3/S23:T64,64
    bo$2bo$3o!

The header gives the pattern's size and rule; a suffix :Tw,h is a torus of w x h cells, :Pw,h a
bounded plane. Two-state rules write cells as b (0) and o (1); more states as . (0), A..X (1..24),
pA..pX (25..48) and so on. A count repeats the next cell or row end ($); ! ends the pattern. A
"#CXRLE Pos=x,y" line gives the top-left cell's place in Golly's coordinates, where a bounded
grid's top-left cell is (-w//2, -h//2).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NCAError
from ..formats.atomic import atomic_output
from .notation import Rule, parse_rule

_HEADER = re.compile(r"x\s*=\s*(\d+)\s*,\s*y\s*=\s*(\d+)\s*(?:,\s*rule\s*=\s*(\S+))?\s*$", re.IGNORECASE)
_TOPOLOGY = re.compile(r"(.*?):([TP])(\d+),(\d+)$", re.IGNORECASE)
_TOKEN = re.compile(r"(\d*)([bo.$!]|[A-X]|[p-y][A-X])")
LINE = 70  # Golly keeps lines about this long


@dataclass
class Pattern:
    cells: np.ndarray  # (H, W) uint8 states
    rule: Rule | None = None  # the header's rule, if it names one in a notation known here
    rule_name: str | None = None  # the header's rule as written (e.g. a Golly rule file's name)
    grid: tuple[int, int] | None = None  # (H, W) of a :T or :P bounded grid
    padding: str | None = None  # "wrap" (:T) or "zero" (:P)
    position: tuple[int, int] | None = None  # Golly's (x, y) of the top-left cell


def read_rle(text: str, source: str = "pattern") -> Pattern:
    """Parse RLE text. Raises NCAError (naming `source`) for a missing header, a topology other than
    :T or :P, or malformed run lengths. A header's rule that is not in a notation known here (the
    name of a Golly rule file, e.g. one `nca rule export` wrote) is kept by name only."""
    lines = text.splitlines()
    position, at = None, 0
    while at < len(lines) and (not lines[at].strip() or lines[at].startswith("#")):
        found = re.search(r"Pos=(-?\d+),(-?\d+)", lines[at]) if lines[at].startswith("#CXRLE") else None
        position = (int(found.group(1)), int(found.group(2))) if found else position
        at += 1
    header = _HEADER.match(lines[at].strip()) if at < len(lines) else None
    if header is None:
        raise NCAError(f"{source} is not an RLE pattern: no header line 'x = <width>, y = <height>, rule = <rule>'")
    pattern = Pattern(cells=_read_cells("".join(lines[at + 1:]), source, int(header.group(2)), int(header.group(1))),
                      position=position)
    if header.group(3):
        _read_rule(header.group(3), source, pattern)
    return pattern


def _read_rule(text: str, source: str, pattern: Pattern) -> None:
    topology = _TOPOLOGY.fullmatch(text)
    if topology is None and ":" in text:
        raise NCAError(f"{source}: unsupported grid {text.split(':', 1)[1]!r} (a torus :Tw,h or a plane :Pw,h)")
    if topology is not None:
        text, kind, width, height = topology.groups()
        pattern.grid, pattern.padding = (int(height), int(width)), ("wrap" if kind.upper() == "T" else "zero")
    pattern.rule_name = text
    with contextlib.suppress(NCAError):
        pattern.rule = parse_rule(text)


def _state(tag: str) -> int:
    if tag in "b.":
        return 0
    if tag == "o":
        return 1
    return (ord(tag[0]) - ord("p") + 1) * 24 + ord(tag[1]) - 64 if len(tag) == 2 else ord(tag) - 64


def _read_cells(body: str, source: str, height: int, width: int) -> np.ndarray:
    """Cells of RLE data: (max(height, rows), max(width, columns)) uint8."""
    body = re.sub(r"\s+", "", body)
    runs, row, col, at = [], 0, 0, 0
    while at < len(body):
        token = _TOKEN.match(body, at)
        if token is None or token.group(1).startswith("0") or (token.group(1) and token.group(2) == "!"):
            raise NCAError(f"{source}: malformed run-length data at {body[at:at + 12]!r}")
        count, tag = int(token.group(1) or 1), token.group(2)
        at = token.end()
        if tag == "!":
            break
        if tag == "$":
            row, col = row + count, 0
            continue
        runs.append((row, col, count, _state(tag)))
        col += count
    rows = max([height] + [r + 1 for r, _, _, _ in runs])
    cols = max([width] + [c + n for _, c, n, _ in runs])
    cells = np.zeros((rows, cols), dtype=np.int64)
    for r, c, n, state in runs:
        cells[r, c:c + n] = state
    if cells.max(initial=0) > 255:
        raise NCAError(f"{source}: states above 255")
    return cells.astype(np.uint8)


def load_rle(path: str | Path) -> Pattern:
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise NCAError(f"cannot read pattern {path}: {exc}") from None
    return read_rle(text, str(path))


def format_rle(cells: np.ndarray, rule: str | None = None, padding: str | None = None,
               position: bool = False, states: int = 2) -> str:
    """RLE text of (H, W) states. `padding` adds the grid's topology to the rule (:T or :P at the
    cells' size); `position` a #CXRLE line placing them as that bounded grid is in Golly."""
    H, W = cells.shape
    lines = [f"#CXRLE Pos={-(W // 2)},{-(H // 2)}"] if position else []
    header = f"x = {W}, y = {H}"
    if rule is not None:
        suffix = "" if padding is None else f":{'T' if padding == 'wrap' else 'P'}{W},{H}"
        header += f", rule = {rule}{suffix}"
    lines.append(header)
    tokens = _row_tokens(cells, states)
    line = ""
    for token in tokens:
        if len(line) + len(token) > LINE:
            lines.append(line)
            line = ""
        line += token
    lines.append(line)
    return "\n".join(lines) + "\n"


def _tag(state: int, states: int) -> str:
    if states == 2:
        return "bo"[state]
    if state == 0:
        return "."
    high, low = divmod(state - 1, 24)
    return ("" if high == 0 else chr(ord("p") + high - 1)) + chr(65 + low)


def _row_tokens(cells: np.ndarray, states: int) -> list[str]:
    """Run tokens of every row (empty rows and trailing empty cells left out), ending with '!'."""
    tokens: list[str] = []
    last = 0  # the row the tokens have reached
    for r, row in enumerate(cells):
        live = np.flatnonzero(row)
        if len(live) == 0:
            continue
        if r > last:
            tokens.append(f"{r - last if r - last > 1 else ''}$")
        last = r
        row = row[: live[-1] + 1]
        edges = np.flatnonzero(np.diff(row.astype(np.int64))) + 1
        for start, stop in zip(np.r_[0, edges], np.r_[edges, len(row)]):
            n = stop - start
            tokens.append(f"{n if n > 1 else ''}{_tag(int(row[start]), states)}")
    return tokens + ["!"]


def save_rle(path: str | Path, cells: np.ndarray, rule: str | None = None, padding: str | None = None,
             states: int = 2) -> None:
    """Write an .rle file atomically."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(format_rle(cells, rule, padding, states=states))
