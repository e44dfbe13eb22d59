"""Opening picture files (targets, wound masks): the one place that decodes images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import NCAError


def read_picture(path: str | Path, what: str = "image") -> tuple[Image.Image, bool]:
    """Open a PNG/JPEG/WebP/... file as RGBA. Returns the image and whether the file had an alpha
    channel. `what` names the file in errors ("mask", "target")."""
    p = Path(path)
    if p.is_dir():
        raise NCAError(f"{what} is a directory, not an image: {path}")
    try:
        with Image.open(p) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            return im.convert("RGBA"), has_alpha
    except FileNotFoundError:
        raise NCAError(f"{what} not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise NCAError(f"cannot read {what} {path}: not a supported image file") from exc


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask picture: black (dark) pixels are killed. -> (H, W) bool"""
    image, _ = read_picture(path, "mask")
    return torch.from_numpy(np.asarray(image.convert("L")) < 128)
