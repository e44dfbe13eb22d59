"""Small PNG figures drawn with Pillow: the training loss curve and a target/result preview."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_output
from .video import upscale

INK, GRID, LINE, SMOOTH = (40, 40, 40), (225, 225, 225), (160, 190, 230), (20, 90, 200)


def save_loss_curve(path: str | Path, losses: list[float], size: tuple[int, int] = (640, 360)) -> None:
    """Batch loss per iteration on a log10 axis, with a moving average; written atomically."""
    width, height = size
    left, right, top, bottom = 56, 16, 16, 36
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = np.array([v for v in losses if math.isfinite(v) and v > 0], dtype=np.float64)
    draw.text((left, 2), "loss (log10) per iteration", fill=INK)
    if len(values) >= 2:
        logs = np.log10(values)
        lo, hi = math.floor(logs.min()), math.ceil(logs.max())
        hi = hi if hi > lo else lo + 1

        def point(i: float, v: float) -> tuple[float, float]:
            x = left + (width - left - right) * i / (len(logs) - 1)
            y = top + (height - top - bottom) * (hi - v) / (hi - lo)
            return x, y

        for decade in range(lo, hi + 1):
            y = point(0, decade)[1]
            draw.line([(left, y), (width - right, y)], fill=GRID)
            draw.text((6, y - 6), f"1e{decade}", fill=INK)
        draw.line([point(i, v) for i, v in enumerate(logs)], fill=LINE)
        window = max(1, len(logs) // 50)
        smooth = np.convolve(logs, np.ones(window) / window, mode="valid")
        if len(smooth) >= 2:
            draw.line([point(i + window - 1, v) for i, v in enumerate(smooth)], fill=SMOOTH, width=2)
        draw.text((left, height - bottom + 8), f"0{' ' * 8}iterations{' ' * 8}{len(values)}", fill=INK)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")


def save_panels(path: str | Path, panels: list[np.ndarray], labels: list[str], scale: int = 4) -> None:
    """Images (H, W, 3) uint8 side by side, each with a caption underneath; written atomically."""
    tiles = [upscale(p, scale) for p in panels]
    h = max(t.shape[0] for t in tiles)
    w = sum(t.shape[1] for t in tiles) + 8 * (len(tiles) + 1)
    image = Image.new("RGB", (w, h + 28), "white")
    draw = ImageDraw.Draw(image)
    x = 8
    for tile, label in zip(tiles, labels):
        image.paste(Image.fromarray(tile), (x, 4))
        draw.text((x, h + 10), label, fill=INK)
        x += tile.shape[1] + 8
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
