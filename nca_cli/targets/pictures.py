"""Opening picture files (targets, wound masks): the one place that decodes images.

Decoding is guarded: a picture whose header claims more than MAX_PIXELS is refused before it is
decoded (Pillow's decompression-bomb guard stays on, and its warning is not printed), and whatever
a damaged file makes the decoder raise becomes one NCAError.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import NCAError

MAX_PIXELS = 64_000_000  # the largest picture read (8000 x 8000)
# What Pillow's decoders raise on damaged files (besides OSError and its own UnidentifiedImageError).
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError,
                 struct.error, ZeroDivisionError, Image.DecompressionBombError, Image.DecompressionBombWarning)


def _decode(path: Path, what: str) -> tuple[Image.Image, bool]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise NCAError(f"cannot read {what} {path}: it is {width}x{height} pixels, more than the "
                               f"{MAX_PIXELS // 1_000_000} megapixels this nca reads")
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            return im.convert("RGBA"), has_alpha


def read_picture(path: str | Path, what: str = "image") -> tuple[Image.Image, bool]:
    """Open a PNG/JPEG/WebP/... file as RGBA. Returns the image and whether the file had an alpha
    channel. `what` names the file in errors ("mask", "image")."""
    p = Path(path)
    if p.is_dir():
        raise NCAError(f"{what} is a directory, not an image: {path}")
    if not p.exists():
        raise NCAError(f"{what} not found: {path}")
    try:
        return _decode(p, what)
    except NCAError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NCAError(f"cannot read {what} {path}: it claims more than the {MAX_PIXELS // 1_000_000} "
                       "megapixels this nca reads") from None
    except DECODE_ERRORS:
        raise NCAError(f"cannot read {what} {path}: not a supported image file") from None


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask picture: black (dark) pixels are killed. -> (H, W) bool"""
    image, _ = read_picture(path, "mask")
    return torch.from_numpy(np.asarray(image.convert("L")) < 128)
