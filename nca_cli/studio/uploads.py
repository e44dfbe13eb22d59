"""What the page sends: pictures to train on, model files to continue, emoji, and file names.

Everything that arrives is checked before it is used: pictures are size-limited, must be of a
common picture format (PNG, JPEG, WebP, GIF, BMP: no decoder that runs other programs) and are
decoded through the project's guarded reader; model files go through the validated safetensors
loader; names of files to write are reduced to a safe stem.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import unicodedata
import warnings
from pathlib import Path

from PIL import Image

from ..errors import NCAError
from ..formats.distill import looks_like_distill
from ..formats.model_file import LoadedModel, load_model
from ..targets import Target
from ..targets.images import emoji_clusters, fitted_target, read_image, render_emoji
from ..targets.pictures import DECODE_ERRORS

MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # a picture or a model file sent by the page
MAX_PICTURE_SIDE = 4096  # pixels
PICTURE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_NAME = 64  # characters of a file stem


class TooLarge(NCAError):
    """An upload over MAX_UPLOAD_BYTES (the server answers 413)."""


def check_upload_size(size: int, what: str) -> None:
    """TooLarge for an upload over MAX_UPLOAD_BYTES."""
    if size > MAX_UPLOAD_BYTES:
        raise TooLarge(f"the {what} is {size / 1e6:.1f} MB; the studio takes files up to "
                       f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB")


def _check_picture(path: Path) -> None:
    """The picture's format and size from its header, before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=PICTURE_FORMATS) as im:
                width, height = im.size
    except DECODE_ERRORS:
        raise NCAError("the upload is not a picture the studio reads (PNG, JPEG, WebP, GIF or BMP)") from None
    if max(width, height) > MAX_PICTURE_SIDE:
        raise NCAError(f"the picture is {width}x{height} pixels; the studio takes pictures up to "
                       f"{MAX_PICTURE_SIDE}x{MAX_PICTURE_SIDE}")


def picture_target(data: bytes, name: str, size: int, pad: int) -> Target:
    """A target from the bytes of a picture file (uploaded or drawn on the page), fitted into a
    size x size box and padded by `pad` cells, as `nca train` does with a file."""
    check_upload_size(len(data), "picture")
    with tempfile.TemporaryDirectory(prefix="nca-studio-") as folder:
        path = Path(folder) / "picture"
        path.write_bytes(data)
        _check_picture(path)
        with _named(path, "the picture"):
            image = read_image(str(path))
    return fitted_target(image, display_name(name) or "picture", size, pad)


def emoji_target(text: str, size: int, pad: int) -> Target:
    """A target from one emoji, rendered from the bundled set (never read as a path)."""
    text = text.strip()
    if not text or len(text) > 16 or any(ord(ch) <= 127 for ch in text) or len(emoji_clusters(text)) != 1:
        raise NCAError(f"{text[:20]!r} is not one emoji")
    return fitted_target(render_emoji(text), text, size, pad)


def uploaded_model(data: bytes) -> LoadedModel:
    """A model file sent by the page, read by the validated safetensors loader: an image model."""
    check_upload_size(len(data), "model file")
    with tempfile.TemporaryDirectory(prefix="nca-studio-") as folder:
        path = Path(folder) / "upload.safetensors"
        path.write_bytes(data)
        if looks_like_distill(path):
            raise NCAError("the upload is not an nca model file (.safetensors)")
        with _named(path, "the uploaded model"):
            loaded = load_model(path)
    loaded.source = "the uploaded model"
    loaded.expect("image", "training in the studio")
    return loaded


@contextlib.contextmanager
def _named(path: Path, name: str):
    """Errors about a temporary file name what the page sent instead."""
    try:
        yield
    except NCAError as exc:
        raise NCAError(str(exc).replace(str(path), name)) from None


def display_name(text: str) -> str:
    """A name shown on the page and kept in model files: printable, at most MAX_NAME characters."""
    return "".join(ch for ch in text if ch.isprintable()).strip()[:MAX_NAME]


def file_stem(text: str) -> str:
    """A safe file stem: letters, digits, '.', '_' and '-' only, no leading dot, at most MAX_NAME
    characters; an emoji becomes its name ('🦎' -> 'lizard'). Empty if nothing is left."""
    words = []
    for ch in text:
        if ord(ch) > 127:
            named = unicodedata.name(ch, "")
            if named and not named.startswith(("VARIATION SELECTOR", "ZERO WIDTH")):
                words.append("-" + named.lower().replace(" ", "-") + "-")
        else:
            words.append(ch)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", "".join(words))
    stem = re.sub(r"-{2,}", "-", stem).strip("-.")
    return stem[:MAX_NAME].rstrip("-.")
