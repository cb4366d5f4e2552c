"""The coverage map of a report as a PNG: the sub-units filled by class, drawn with Pillow (no map server, no tiles).

Longitudes are scaled by the cosine of the middle latitude (an equirectangular
view, true to shape at the scale of a province). Text is kept out of the
image: the legend and captions are written beside it in the HTML and XLSX,
where Vietnamese names need no font in the image.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator

from maps.reports import CoverageMap

WIDTH, HEIGHT, MARGIN = 900, 640, 16
NO_DATA = "no data"
NO_DATA_COLOUR = (200, 200, 200)
# From red (far from the target) to green (target reached), for up to nine classes.
RAMP = [(215, 48, 39), (244, 109, 67), (253, 174, 97), (254, 224, 139), (217, 239, 139), (166, 217, 106),
        (102, 189, 99), (26, 152, 80), (0, 104, 55)]


def class_colours(classes: list[str]) -> dict[str, tuple[int, int, int]]:
    """A colour per class label, lowest class red, highest green; ``no data`` grey.

    >>> c = class_colours(["0–50 %", "50–80 %", "80–100 %", "≥ 100 %"])
    >>> c["0–50 %"], c["≥ 100 %"], c["no data"]
    ((215, 48, 39), (0, 104, 55), (200, 200, 200))
    """
    n = len(classes)
    picks = [RAMP[round(i * (len(RAMP) - 1) / max(n - 1, 1))] for i in range(n)]
    return {**dict(zip(classes, picks, strict=True)), NO_DATA: NO_DATA_COLOUR}


def _polygons(geometry: dict | None) -> Iterator[list[list[tuple[float, float]]]]:
    if not geometry:
        return
    if geometry["type"] == "Polygon":
        yield geometry["coordinates"]
    elif geometry["type"] == "MultiPolygon":
        yield from geometry["coordinates"]


def coverage_png(data: CoverageMap) -> bytes | None:
    """The map as PNG bytes; None when no unit has a polygon."""
    rings = [(shape.klass if shape.filled else None, polygon) for shape in data.shapes for polygon in _polygons(shape.geometry)]
    points = [pt for _, polygon in rings for ring in polygon for pt in ring]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    squeeze = math.cos(math.radians((min(ys) + max(ys)) / 2))
    span_x, span_y = max((max(xs) - min(xs)) * squeeze, 1e-9), max(max(ys) - min(ys), 1e-9)
    scale = min((WIDTH - 2 * MARGIN) / span_x, (HEIGHT - 2 * MARGIN) / span_y)

    def at(pt) -> tuple[float, float]:
        return MARGIN + (pt[0] - min(xs)) * squeeze * scale, MARGIN + (max(ys) - pt[1]) * scale

    colours = class_colours(data.classes)
    from PIL import Image, ImageDraw  # imported for the first report, not by every server

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    for klass, polygon in rings:  # filled shapes come first in the list, lines after them
        outer, *holes = polygon
        if klass is None:
            draw.polygon([at(p) for p in outer], outline=(60, 60, 60))
            continue
        draw.polygon([at(p) for p in outer], fill=colours.get(klass, NO_DATA_COLOUR), outline=(90, 90, 90))
        for hole in holes:
            draw.polygon([at(p) for p in hole], fill="white", outline=(90, 90, 90))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
