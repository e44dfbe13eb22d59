"""Running Golly's command-line `bgolly` on a grid and reading its result back, for the tests.

The result is read from Golly's macrocell format (.mc), which keeps absolute positions (its RLE
output does not): leaves "1 nw ne sw se" are 2x2 blocks of states, nodes "k nw ne sw se" squares of
2**k cells made of earlier nodes (0: empty); the root's south-east child starts at (x=0, y=1).
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nca_cli.rules.rle import format_rle

BGOLLY = shutil.which("bgolly")
needs_bgolly = pytest.mark.skipif(BGOLLY is None, reason="bgolly (Debian package golly) is not installed")


def read_macrocell(text: str, height: int, width: int) -> np.ndarray:
    """A multi-state macrocell file -> the (height, width) bounded grid centred as Golly centres it."""
    nodes = [None] + [tuple(int(v) for v in line.split()) for line in text.splitlines() if line[:1].isdigit()]
    grid = np.zeros((height, width), np.uint8)

    def paint(index, x, y):
        if index == 0:
            return
        k, *children = nodes[index]
        if k == 1:
            for (dx, dy), state in zip(((0, 0), (1, 0), (0, 1), (1, 1)), children):
                if state:
                    grid[y + dy + height // 2, x + dx + width // 2] = state
            return
        half = 1 << (k - 1)
        for (dx, dy), child in zip(((0, 0), (half, 0), (0, half), (half, half)), children):
            paint(child, x + dx, y + dy)

    if len(nodes) > 1:
        size = 1 << nodes[-1][0]
        paint(len(nodes) - 1, -size // 2, -size // 2 + 1)
    return grid


def run_bgolly(cells: np.ndarray, rule: str, steps: int, folder: Path, states: int, algorithm: str,
               rules_folder: Path | None = None) -> np.ndarray:
    """Run `steps` generations of (H, W) cells on a torus of that size in bgolly. -> (H, W)"""
    pattern, result = folder / "pattern.rle", folder / "result.mc"
    pattern.write_text(format_rle(cells, rule, "wrap", position=True, states=states))
    command = [BGOLLY, "-a", algorithm, "-m", str(steps), "-o", str(result), str(pattern)]
    if rules_folder is not None:
        command[1:1] = ["-s", f"{rules_folder}/"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return read_macrocell(result.read_text(), *cells.shape)
