import numpy as np
import pytest
import torch
from PIL import Image

from nca_cli.errors import NCAError
from nca_cli.targets import load_target


def write_png(path, array, mode):
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)
    return str(path)


def test_emoji_target_is_padded_premultiplied_rgba():
    t = load_target("🦎", size=20, pad=4)
    assert t.rgba.shape == (28, 28, 4) and t.rgba.dtype == torch.float32
    assert t.rgba[:4].abs().sum() == 0 and t.rgba[:, -4:].abs().sum() == 0  # padding
    assert (t.rgba[..., :3] <= t.rgba[..., 3:] + 1e-6).all()  # premultiplied: rgb <= alpha
    assert t.rgba[14, 14, 3] > 0.5  # the seed cell (grid centre) sits on the pattern
    assert t.name == "🦎" and len(t.sha256) == 64


def test_image_with_alpha_keeps_aspect(tmp_path):
    a = np.zeros((10, 20, 4))
    a[..., 0], a[..., 3] = 255, 255  # an opaque red bar, twice as wide as high
    t = load_target(write_png(tmp_path / "bar.png", a, "RGBA"), size=10, pad=0)
    alpha = t.rgba[..., 3]
    assert alpha.shape == (10, 10)
    assert alpha[5].min() == 1 and alpha[0].max() == 0 and alpha[-1].max() == 0
    assert torch.allclose(t.rgba[5, 5], torch.tensor([1.0, 0, 0, 1]))


def test_image_without_alpha_makes_near_white_transparent(tmp_path):
    a = np.full((8, 8, 3), 255)
    a[2:6, 2:6] = (0, 0, 200)
    path = write_png(tmp_path / "sq.jpg.png", a, "RGB")
    t = load_target(path, size=8, pad=0)
    assert t.rgba[0, 0, 3] == 0 and t.rgba[4, 4, 3] == 1
    kept = load_target(path, size=8, pad=0, keep_white=True)
    assert kept.rgba[0, 0].tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "missing.png"), "target not found: {p}/missing.png (give an image file or a single emoji)"),
    (lambda p: (p / "notes.png").write_text("hello") and str(p / "notes.png"),
     "cannot read image {p}/notes.png: not a supported image file"),
    (lambda p: write_png(p / "clear.png", np.zeros((6, 6, 4)), "RGBA"),
     "target clear.png is empty: no pixel is opaque enough to grow"),
    (lambda p: "Ω", "cannot render emoji 'Ω': not in the bundled Twemoji set and no colour emoji font is installed that has it"),
])
def test_bad_targets(tmp_path, make, message):
    spec = make(tmp_path)
    with pytest.raises(NCAError) as exc:
        load_target(spec, size=8, pad=2)
    assert str(exc.value) == message.format(p=tmp_path)


def test_bad_sizes():
    with pytest.raises(NCAError, match="target size must be at least 4"):
        load_target("🦎", size=2)
    with pytest.raises(NCAError, match="padding must not be negative"):
        load_target("🦎", pad=-1)
