"""Two small voxel bodies modelled in code, written as MagicaVoxel files with nca's own writer.

    python examples/voxel_shapes.py          # writes tree.vox and mushroom.vox beside this file

`tree.vox` (a trunk under a two-tone canopy, 2,316 voxels) and `mushroom.vox` (a red cap with
white spots on a pale stem, 2,746 voxels) are the two shapes of the 3D measurements in docs/3d.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nca_cli.voxels.vox import write_vox

BARK, LEAF_DARK, LEAF_LIGHT = (110, 70, 35), (40, 115, 40), (110, 180, 60)
STEM, CAP, SPOT = (235, 225, 200), (200, 40, 30), (250, 250, 250)


def _coords(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel centres z (up), y, x of a (D, H, W) grid, each (D, H, W)."""
    return np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")


def tree() -> np.ndarray:
    """A tree: a trunk of radius 1.6 under an ellipsoid canopy (dark below, light above), in a
    26 x 18 x 18 box. -> (D, H, W, 4) uint8 straight RGBA (D up)."""
    shape = (26, 18, 18)
    z, y, x = _coords(shape)
    r2 = (y - 8.5) ** 2 + (x - 8.5) ** 2
    body = np.zeros((*shape, 4), dtype=np.uint8)
    body[(r2 < 1.6 ** 2 * 1.5) & (z < 12)] = (*BARK, 255)
    canopy = r2 / 8.4 ** 2 + (z - 17.5) ** 2 / 7.4 ** 2 < 1
    body[canopy & (z < 17)] = (*LEAF_DARK, 255)
    body[canopy & (z >= 17)] = (*LEAF_LIGHT, 255)
    return body


def mushroom() -> np.ndarray:
    """A mushroom: a pale stem of radius 3 under a red half-ellipsoid cap with white spots, in a
    18 x 23 x 23 box. -> (D, H, W, 4) uint8 straight RGBA (D up)."""
    shape = (18, 23, 23)
    z, y, x = _coords(shape)
    r2 = (y - 11) ** 2 + (x - 11) ** 2
    body = np.zeros((*shape, 4), dtype=np.uint8)
    body[(r2 < 3.2 ** 2) & (z < 11)] = (*STEM, 255)
    cap = (r2 / 11.5 ** 2 + (z - 10) ** 2 / 7.8 ** 2 < 1) & (z >= 10)
    body[cap] = (*CAP, 255)
    for sy, sx, sz in ((11, 11, 17), (5, 11, 14), (17, 11, 14), (11, 5, 14), (11, 17, 14), (7, 7, 12), (15, 15, 12)):
        spot = ((y - sy) ** 2 + (x - sx) ** 2 + (z - sz) ** 2 < 2.3 ** 2) & cap
        body[spot] = (*SPOT, 255)
    return body


if __name__ == "__main__":
    here = Path(__file__).parent
    for name, body in (("tree", tree()), ("mushroom", mushroom())):
        write_vox(here / f"{name}.vox", body)
        print(f"{name}.vox: {body.shape[2]}x{body.shape[1]}x{body.shape[0]}, {(body[..., 3] > 0).sum()} voxels")
