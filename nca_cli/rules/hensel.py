"""Hensel's notation for isotropic non-totalistic rules: which live neighbours, up to symmetry.

A cell's eight neighbours fall into 51 classes under the square's rotations and reflections. A
class is named by the number of live neighbours and, where that number allows more than one shape,
a letter: "2a" (two adjacent), "2i" (two opposite edges), "3" alone for all of 3's shapes. Rules
list classes after B (birth) and S (survival): B2-a/S12 is born on every two-neighbour shape but
"a", survives on one or two. Letters follow Golly's table of shapes; tests check them against Golly.
"""

from __future__ import annotations

import numpy as np

from ..errors import NCAError
from .neighbourhoods import CENTRE, POSITIONS, SQUARE_SYMMETRIES

# One shape per letter, as the live neighbours' positions; counts 5 to 7 are the complements of
# 3 to 1 with the same letters, 0 and 8 have one shape each.
SHAPES = {
    1: {"c": "NE", "e": "N"},
    2: {"c": "NW NE", "e": "N E", "k": "N SE", "a": "N NE", "i": "N S", "n": "NW SE"},
    3: {"c": "NW NE SE", "e": "N E W", "k": "NW E S", "a": "NW N W", "i": "NW N NE", "n": "NW NE E",
        "y": "NW NE S", "q": "NW N SE", "j": "NW N E", "r": "NW N S"},
    4: {"c": "NW NE SE SW", "e": "N E S W", "k": "NW NE S W", "a": "NW N NE E", "i": "NW NE E W",
        "n": "NW N NE SE", "y": "NW NE E SW", "q": "NW N SE W", "j": "NW N E S", "r": "NW N E W",
        "t": "NW N NE S", "w": "NW N E SE", "z": "NW N SE S"},
}
LETTERS = {n: "".join(sorted(SHAPES[min(n, 8 - n)])) if 0 < n < 8 else "" for n in range(9)}
CLASSES = [f"{n}{letter}" for n in range(9) for letter in (LETTERS[n] or [""])]  # 51 names


def shape_code(count: int, letter: str) -> int:
    """The 9-bit code (centre dead, NW the top bit) of a class's shape."""
    if count in (0, 8):
        names = [] if count == 0 else [p for p in POSITIONS if p != "C"]
    elif count <= 4:
        names = SHAPES[count][letter].split()
    else:
        names = [p for p in POSITIONS if p != "C" and p not in SHAPES[8 - count][letter].split()]
    return sum(1 << (8 - POSITIONS.index(p)) for p in names)


def _class_of_codes() -> np.ndarray:
    """The class (index into CLASSES) of every 2-state neighbourhood code, the centre ignored. (512,)"""
    bits = (np.arange(512)[:, None] >> np.arange(8, -1, -1)) & 1  # (512, 9)
    images = bits[:, SQUARE_SYMMETRIES]  # (512, 8, 9)
    images[..., CENTRE] = 0
    canonical = (images << np.arange(8, -1, -1)).sum(-1).min(axis=1)  # (512,)
    classes = np.full(512, -1)
    for index, name in enumerate(CLASSES):
        code = shape_code(int(name[0]), name[1:])
        classes[canonical == canonical[code]] = index
    return classes


CLASS_OF_CODE = _class_of_codes()


def classes_of(alive: np.ndarray) -> np.ndarray:
    """The Hensel class of each neighbourhood's live neighbours: (M, 9) 0/1 -> (M,) index into CLASSES."""
    return CLASS_OF_CODE[(alive.astype(np.int64) << np.arange(8, -1, -1)).sum(-1)]


def is_totalistic(classes: frozenset[str]) -> bool:
    """Whether a set of classes is a set of whole counts (every letter of each count, or none)."""
    return all(len({c for c in classes if c[0] == str(n)}) in (0, max(1, len(LETTERS[n]))) for n in range(9))


def format_conditions(classes: frozenset[str]) -> str:
    """Classes as Hensel conditions, each count written the shorter way: {"2c","2e","2k","2i","2n"}
    -> "2-a"; a whole count is its digit alone."""
    parts = []
    for n in range(9):
        have = "".join(sorted(c[1:] for c in classes if c[0] == str(n)))
        if not have and not (n in (0, 8) and str(n) in classes):
            continue
        missing = "".join(letter for letter in LETTERS[n] if letter not in have)
        if not missing:
            parts.append(str(n))
        else:
            parts.append(f"{n}-{missing}" if len(missing) + 1 < len(have) else f"{n}{have}")
    return "".join(parts)


def parse_conditions(text: str) -> frozenset[str]:
    """Hensel conditions ("2-a3", "12", "2cek") -> classes. Raises NCAError naming the fault."""
    classes: set[str] = set()
    i = 0
    while i < len(text):
        n = text[i]
        if not n.isdigit() or n == "9":
            raise NCAError(f"expected a neighbour count 0-8 at {text[i:]!r}")
        j = i + 1
        negate = j < len(text) and text[j] == "-"
        j += negate
        k = j
        while k < len(text) and text[k].isalpha():
            k += 1
        letters, count = text[j:k], int(n)
        if negate and not letters:
            raise NCAError(f"'{n}-' must be followed by the letters to leave out")
        unknown = sorted(set(letters) - set(LETTERS[count]))
        if unknown:
            allowed = LETTERS[count] or "none"
            raise NCAError(f"'{unknown[0]}' is not a shape of {count} neighbours (letters: {allowed})")
        chosen = [c for c in LETTERS[count] if (c in letters) != negate] if letters else list(LETTERS[count]) or [""]
        classes.update(f"{count}{c}" for c in chosen)
        i = k
    return frozenset(classes)
