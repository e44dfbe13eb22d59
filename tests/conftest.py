import numpy as np
import pytest
from PIL import Image

from nca_cli.engine import NCAConfig
from nca_cli.targets import load_target
from nca_cli.training import TrainConfig

TINY_MODEL = NCAConfig(channels=8, hidden=16)
TINY_TRAIN = TrainConfig(mode="regen", iterations=6, batch=4, pool_size=8, steps_min=8, steps_max=12,
                         damage_count=1, seed=3)
# The same run through the command line.
TINY_ARGS = ["--size", "12", "--pad", "4", "--channels", "8", "--hidden", "16", "--iterations", "6",
             "--batch", "4", "--pool-size", "8", "--steps-min", "8", "--steps-max", "12", "--seed", "3",
             "--device", "cpu"]


def disc_image(size: int = 12) -> np.ndarray:
    """An orange disc with a darker centre, on transparent background: (size, size, 4) uint8."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    a = np.zeros((size, size, 4), dtype=np.uint8)
    a[r < size / 2 - 0.5] = (240, 140, 20, 255)
    a[r < size / 5] = (120, 50, 0, 255)
    return a


@pytest.fixture(autouse=True)
def own_working_folder(tmp_path, monkeypatch):
    """Every test runs in a folder of its own: a model file in the folder pytest was started from
    (the README's main job writes lizard.safetensors there) must not stand in for the bundled model
    of that name, and no test writes into the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def disc_png(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("targets") / "disc.png"
    Image.fromarray(disc_image(), "RGBA").save(path)
    return str(path)


@pytest.fixture(scope="session")
def disc_target(disc_png):
    return load_target(disc_png, size=12, pad=4)
