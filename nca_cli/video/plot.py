"""The PSNR-over-time figure: one line per method, drawn with Pillow in the style of the
project's other figures (nca_cli/formats/plots.py)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from ..formats.atomic import atomic_output
from ..formats.plots import GRID, INK

COLOURS = {"nca": (20, 90, 200), "interpolation": (220, 120, 20), "last_seen": (120, 120, 120)}
OTHER = (60, 160, 60)


def save_psnr_plot(path: str | Path, series: dict[str, list[float]], fps: float,
                   size: tuple[int, int] = (640, 360)) -> None:
    """PSNR (dB) per frame of each method against time (seconds), with a legend; written atomically."""
    width, height = size
    left, right, top, bottom = 48, 16, 34, 36
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 2), "PSNR (dB) per frame", fill=INK)
    values = [v for line in series.values() for v in line if math.isfinite(v)]
    frames = max((len(line) for line in series.values()), default=0)
    if values and frames >= 2:
        lo, hi = 5 * math.floor(min(values) / 5), 5 * math.ceil(max(values) / 5)
        hi = hi if hi > lo else lo + 5

        def point(i: int, v: float) -> tuple[float, float]:
            return (left + (width - left - right) * i / (frames - 1),
                    top + (height - top - bottom) * (hi - v) / (hi - lo))

        for db in range(lo, hi + 1, 5):
            y = point(0, db)[1]
            draw.line([(left, y), (width - right, y)], fill=GRID)
            draw.text((8, y - 6), f"{db}", fill=INK)
        for name, line in series.items():
            draw.line([point(i, v) for i, v in enumerate(line) if math.isfinite(v)],
                      fill=COLOURS.get(name, OTHER), width=2)
        base = height - bottom + 8
        draw.text((left, base), "0 s", fill=INK)
        end = f"{(frames - 1) / fps:.1f} s"
        draw.text((width - right - 7 * len(end), base), end, fill=INK)
    x = left + 150
    for name in series:
        draw.line([(x, 10), (x + 16, 10)], fill=COLOURS.get(name, OTHER), width=3)
        draw.text((x + 20, 4), name.replace("_", " "), fill=INK)
        x += 30 + 7 * len(name)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
