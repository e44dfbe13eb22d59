"""Demo clips made locally: the camera looping slowly over a photograph that ships with
scikit-image, or the project's bundled lizard growing, being cut and healing. Nothing is fetched.

A pan moves a window of the clip's size over the photograph (scaled so that the loop just fits)
along an ellipse traversed once per clip, so that the camera moves in every direction at about
`speed` pixels per frame; sub-pixel positions are interpolated bilinearly.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InvalidOption, NCAError
from .clips import Clip, fit_frame

# Photographs in scikit-image's own data folder (no download): name -> skimage.data function.
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "immunohistochemistry")
SOURCES = PHOTOS + ("lizard",)
MIN_SIDE = 8


def check_demo(name: str, size: tuple[int, int], frames: int, speed: float) -> None:
    if name not in SOURCES:
        raise NCAError(f"unknown demo clip {name!r}: use one of {', '.join(SOURCES)}")
    if min(size) < MIN_SIDE:
        raise InvalidOption("size", f"must be at least {MIN_SIDE}x{MIN_SIDE}, got {size[0]}x{size[1]}")
    if frames < 1:
        raise InvalidOption("frames", f"must be at least 1, got {frames}")
    if not (math.isfinite(speed) and 0 <= speed <= 8):
        raise InvalidOption("speed", f"must be between 0 and 8 pixels per frame, got {speed:g}")


def make_demo_clip(name: str, size: tuple[int, int] = (96, 96), frames: int = 300, fps: float = 30.0,
                   speed: float = 0.5, seed: int = 0) -> Clip:
    """A demo clip of `frames` frames of `size` (height, width): a pan over the photograph `name`, or
    "lizard". `seed` picks where on the loop the camera starts and which way it turns."""
    check_demo(name, size, frames, speed)
    if name == "lizard":
        return lizard_clip(size, frames, fps)
    return Clip(pan_frames(photo(name), size, frames, speed, seed), fps, name)


def photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs as (h, w, 3) uint8."""
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def pan_path(frames: int, radius: float, seed: int) -> np.ndarray:
    """Offsets (frames, 2) (rows, cols) of the camera from the loop's centre: an ellipse of radii
    `radius` x 1.5 `radius` traversed once, from a phase and in a direction set by `seed`."""
    rng = np.random.default_rng(seed)
    phase, turn = rng.uniform(0, 2 * math.pi), rng.choice([-1.0, 1.0])
    angle = phase + turn * 2 * math.pi * np.arange(frames) / frames
    return np.stack([radius * np.sin(angle), 1.5 * radius * np.cos(angle)], axis=1)


def pan_frames(image: np.ndarray, size: tuple[int, int], frames: int, speed: float, seed: int) -> np.ndarray:
    """A window of `size` moving around a loop over `image` at about `speed` pixels per frame.
    -> (frames, H, W, 3) uint8"""
    H, W = size
    # The ellipse's perimeter is about 2 pi * 1.25 radius; the clip goes round it once.
    radius = speed * frames / (2 * math.pi * 1.25)
    need = (H + 2 * radius + 4, W + 3 * radius + 4)  # the scaled photograph: the window and the loop
    scale = max(need[0] / image.shape[0], need[1] / image.shape[1])
    scaled = fit_frame(image, (math.ceil(image.shape[0] * scale), math.ceil(image.shape[1] * scale)))
    scaled = scaled.astype(np.float32)
    centre = ((scaled.shape[0] - H) / 2, (scaled.shape[1] - W) / 2)
    out = np.empty((frames, H, W, 3), dtype=np.uint8)
    for t, (dy, dx) in enumerate(pan_path(frames, radius, seed)):
        out[t] = window(scaled, centre[0] + dy, centre[1] + dx, H, W)
    return out


def window(image: np.ndarray, top: float, left: float, H: int, W: int) -> np.ndarray:
    """The H x W window of float (h, w, 3) at a sub-pixel corner, bilinear. -> (H, W, 3) uint8"""
    y0, x0 = int(math.floor(top)), int(math.floor(left))
    fy, fx = top - y0, left - x0
    block = image[y0 : y0 + H + 1, x0 : x0 + W + 1]
    rows = (1 - fy) * block[:H] + fy * block[1 : H + 1]
    mixed = (1 - fx) * rows[:, :W] + fx * rows[:, 1 : W + 1]
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def lizard_clip(size: tuple[int, int], frames: int, fps: float) -> Clip:
    """The bundled lizard growing from one cell, one CA step per frame, cut by a disc of radius 10
    cells half way through and healing; composited over white and fitted to `size`."""
    from ..engine import render_rgb, seed_state
    from ..formats.model_file import load_model
    from ..growth import Wound, apply_damage

    loaded = load_model("lizard")
    model, wound_at = loaded.model, frames // 2
    x = seed_state(model.config, *loaded.target.shape)
    generator = torch.Generator().manual_seed(0)
    out = []
    with torch.no_grad():
        for t in range(frames):
            if t == wound_at and t > 0:
                x = apply_damage(x, Wound(shape="circle", radius=10).masks(x))
            out.append(fit_frame(render_rgb(x[0]).numpy(), size))
            x = model.step(x, generator=generator)
    return Clip(np.stack(out), fps, "lizard")
