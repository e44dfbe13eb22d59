"""Draw recipe curves (the JSON lines that bench/recipe_curve.py prints, one file per run) side by
side: grown and regrown loss against training CPU time and against iterations, log scale.

    python bench/plot_recipe_curves.py OUT.png LABEL=RUN.log[,RUN.log...] [LABEL=...]

Each LABEL is one recipe drawn in one colour, one line per run (seed); grown losses solid,
regrown losses thin; dashed lines at the article recipe's 45-minute quality.
"""

import json
import math
import sys

from PIL import Image, ImageDraw

COLOURS = [(20, 90, 200), (220, 90, 20), (30, 150, 60), (150, 40, 160)]
PANEL, LEFT, TOP, BOTTOM, RIGHT = (520, 340), 58, 28, 40, 14
LOW, HIGH = -3.0, 0.0  # log10 of the loss axis
BARS = [(0.006, "grown 0.006"), (0.016, "regrown 0.016")]  # the article recipe's 45-minute quality


def read_points(path: str) -> list[dict]:
    points = []
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                points.append(json.loads(line))
    return points


def draw_panel(draw: ImageDraw.ImageDraw, origin: int, runs: dict, x_key: str, x_label: str) -> None:
    width, height = PANEL
    x_max = max(p[x_key] for series in runs.values() for points in series for p in points)
    x0, y0, x1, y1 = origin + LEFT, TOP, origin + width - RIGHT, height - BOTTOM

    def at(x: float, loss: float) -> tuple[float, float]:
        level = min(HIGH, max(LOW, math.log10(max(loss, 1e-12))))
        return x0 + (x1 - x0) * x / x_max, y0 + (y1 - y0) * (HIGH - level) / (HIGH - LOW)

    for decade in range(int(LOW), int(HIGH) + 1):
        y = at(0, 10.0 ** decade)[1]
        draw.line([(x0, y), (x1, y)], fill=(225, 225, 225))
        draw.text((origin + 6, y - 6), f"1e{decade}", fill=(40, 40, 40))
    for i in range(5):
        x = x0 + (x1 - x0) * i / 4
        draw.text((x - 10, y1 + 4), f"{x_max * i / 4:.0f}", fill=(40, 40, 40))
    draw.text((x0, y1 + 20), x_label, fill=(40, 40, 40))
    for loss, name in BARS:
        y = at(0, loss)[1]
        for x in range(int(x0), int(x1), 8):
            draw.line([(x, y), (x + 4, y)], fill=(120, 120, 120))
        draw.text((x1 - 110, y - 12), name, fill=(120, 120, 120))
    for colour, series in zip(COLOURS, runs.values()):
        for points in series:
            for key, width_px in (("grow", 2), ("regrow", 1)):
                draw.line([at(0, 1.0)] + [at(p[x_key], p[key]) for p in points], fill=colour, width=width_px)


def main() -> None:
    out, specs = sys.argv[1], sys.argv[2:]
    runs = {}
    for spec in specs:
        label, files = spec.split("=", 1)
        runs[label] = [read_points(path) for path in files.split(",")]
    image = Image.new("RGB", (PANEL[0] * 2, PANEL[1]), "white")
    draw = ImageDraw.Draw(image)
    draw_panel(draw, 0, runs, "cpu_s", "training CPU seconds (one thread)")
    draw_panel(draw, PANEL[0], runs, "iterations", "iterations")
    legend = "   ".join(f"{label}: {len(series)} runs" for label, series in runs.items())
    draw.text((LEFT, 6), f"loss (log10): grown thick, regrown thin.   {legend}", fill=(40, 40, 40))
    for i, label in enumerate(runs):
        draw.rectangle([PANEL[0] * 2 - 150, 8 + 14 * i, PANEL[0] * 2 - 140, 16 + 14 * i], fill=COLOURS[i])
        draw.text((PANEL[0] * 2 - 134, 6 + 14 * i), label, fill=(40, 40, 40))
    image.save(out)


if __name__ == "__main__":
    main()
