"""Small PNG figures drawn with Pillow: the training loss curve and a target/result preview."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_output
from .frames import upscale

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
        base = height - bottom + 8
        draw.text((left, base), "0", fill=INK)
        draw.text(((left + width - right) // 2 - 30, base), "iterations", fill=INK)
        draw.text((width - right - 8 * len(str(len(values))), base), str(len(values)), fill=INK)
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


def save_sweep_plot(path: str | Path, by_radius: list[dict], by_position: list[dict], pattern: np.ndarray,
                    scale: int = 4, markers: list[tuple[float, float, float]] | None = None) -> None:
    """Recovery rate against wound radius (left) and a heat map of recovery by wound centre drawn
    over the grown pattern (right: red never recovers, green always). The centres are cells
    (`by_position` row, col) of the pattern drawn `scale` pixels a cell, or `markers` (pixel row,
    col, recovery rate) on a picture of the pattern (a view of a voxel body). Written atomically."""
    H, W = pattern.shape[:2]
    chart_w, chart_h, left, bottom = 360, max(H * scale, 240), 44, 30
    image = Image.new("RGB", (chart_w + W * scale + 24, chart_h + 40), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 4), "recovery rate vs wound radius (cells)", fill=INK)
    x0, y0, x1, y1 = left, 20, chart_w - 12, chart_h - bottom + 20
    for frac in (0.0, 0.5, 1.0):
        y = y1 - (y1 - y0) * frac
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((6, y - 6), f"{frac:.1f}", fill=INK)
    if by_radius:
        radii = [row["radius"] for row in by_radius]
        lo, hi = min(radii), max(radii) if max(radii) > min(radii) else min(radii) + 1
        points = [(x0 + (x1 - x0) * (r - lo) / (hi - lo), y1 - (y1 - y0) * row["recovery_rate"])
                  for r, row in zip(radii, by_radius)]
        if len(points) > 1:
            draw.line(points, fill=SMOOTH, width=2)
        for (px, py), r in zip(points, radii):
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=SMOOTH)
            draw.text((px - 6, y1 + 6), f"{r:g}", fill=INK)
    heat = upscale(pattern, scale).astype(np.float32) * 0.35 + 255 * 0.65  # the pattern, faded
    half = max(1, scale * 2) if markers is None else 4
    if markers is None:
        markers = [(c["row"] * scale + scale // 2, c["col"] * scale + scale // 2, c["recovery_rate"]) for c in by_position]
    for cy, cx, rate in markers:
        colour = np.array([255 * (1 - rate), 200 * rate, 40], dtype=np.float32)
        cy, cx = int(round(cy)), int(round(cx))
        heat[max(cy - half, 0) : max(cy + half, 0), max(cx - half, 0) : max(cx + half, 0)] = colour
    image.paste(Image.fromarray(heat.astype(np.uint8)), (chart_w + 12, 20))
    draw.text((chart_w + 12, 4), "recovery by wound centre", fill=INK)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
