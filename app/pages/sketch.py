"""A small SVG sketch of an incident's point in its grid: no tiles, no script, no asset.

The grid outline comes as GeoJSON (WGS84). Over a grid's few hundred metres a plain
equirectangular projection (longitude scaled by the cosine of the latitude) is true
to a fraction of a percent, so no CRS library is needed to draw it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence

__all__ = ["grid_sketch"]

_WIDTH, _HEIGHT, _PAD = 320, 220, 12


def _rings(geometry: dict) -> list[Sequence[Sequence[float]]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    if geometry["type"] == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


def grid_sketch(geometry_json: str | None, lon: float | None, lat: float | None) -> str | None:
    """SVG markup of the grid outline and the point (either may be missing); None if neither."""
    rings = _rings(json.loads(geometry_json)) if geometry_json else []
    points: list[tuple[float, float]] = [(x, y) for ring in rings for x, y, *_ in ring]
    if lon is not None and lat is not None:
        points.append((lon, lat))
    if not points:
        return None
    shrink = math.cos(math.radians(sum(y for _, y in points) / len(points)))
    xs = [x * shrink for x, _ in points]
    ys = [y for _, y in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-5)  # ~1 m: a lone point
    scale = min(_WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD) / span
    x0, y1 = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2

    def at(x: float, y: float) -> str:
        return f"{_WIDTH / 2 + (x * shrink - x0) * scale:.1f},{_HEIGHT / 2 - (y - y1) * scale:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gm-sketch" viewBox="0 0 {_WIDTH} '
        f'{_HEIGHT}" role="img" aria-label="网格与事件位置 / the grid and the incident">'
    ]
    if rings:
        path = " ".join(_ring_path(ring, at) for ring in rings)
        parts.append(
            f'<path d="{path}" fill="#dce9f5" stroke="#1f6fb2" stroke-width="2" '
            'fill-rule="evenodd"/>'
        )
    if lon is not None and lat is not None:
        cx, cy = at(lon, lat).split(",")
        parts.append(
            f'<circle id="gm-point" cx="{cx}" cy="{cy}" r="6" fill="#d9480f" stroke="#fff" '
            'stroke-width="2"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _ring_path(ring: Iterable[Sequence[float]], at) -> str:
    return "M" + " L".join(at(x, y) for x, y, *_ in ring) + " Z"
