"""Loss curves as PNG, drawn with PIL (log-scaled y), so training needs no plotting library."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from sceneforge.io.atomic import atomic_path

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def plot_loss_curve(steps: Sequence[int], series: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Write one line per named series against ``steps`` (y on a log scale) to a PNG; returns the path."""
    path = Path(path)
    image = _draw(steps, series)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def _draw(steps: Sequence[int], series: Mapping[str, Sequence[float]], width: int = 640, height: int = 400):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 60, width - 20, 20, height - 40
    values = [v for vs in series.values() for v in vs if v > 0 and math.isfinite(v)]
    if not values or not steps:
        draw.text((left, top), "no finite loss to plot", fill="black")
        return image
    lo, hi = math.log10(min(values)), math.log10(max(values))
    hi = hi if hi > lo else lo + 1.0
    s0, s1 = min(steps), max(steps)
    s1 = s1 if s1 > s0 else s0 + 1

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (step - s0) / (s1 - s0) * (right - left)
        y = bottom - (math.log10(value) - lo) / (hi - lo) * (bottom - top)
        return x, y

    draw.rectangle([left, top, right, bottom], outline="black")
    for exponent in range(math.floor(lo), math.ceil(hi) + 1):
        if lo <= exponent <= hi:
            _, y = xy(s0, 10.0 ** exponent)
            draw.line([left, y, right, y], fill=(220, 220, 220))
            draw.text((5, y - 6), f"1e{exponent}", fill="black")
    draw.text((left, bottom + 8), f"step {s0}", fill="black")
    draw.text((right - 80, bottom + 8), f"step {s1}", fill="black")
    for i, (name, vals) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = [xy(s, v) for s, v in zip(steps, vals) if v > 0 and math.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.text((right - 120, top + 6 + 14 * i), name, fill=colour)
    return image
