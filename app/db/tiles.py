"""Mapbox vector tiles of the areas and thematic units, made by PostGIS (``ST_AsMVT``).

One statement per tile: the tile's envelope (``ST_TileEnvelope``, Web Mercator) is
turned into WGS84 once, so the filter ``geom && envelope`` uses the GiST index of
the stored (EPSG:4326) geometries; only the rows it finds are projected,
simplified for the zoom and clipped (``ST_AsMVTGeom``).

Simplification: a tile is 4,096 units wide, so one unit is ``40,075,016.7 m /
2^z / 4,096``; vertices closer than a unit fall on the same tile coordinate
anyway. ``ST_Simplify`` (Douglas–Peucker, collapsed rings kept) with a tolerance
of one unit, before clipping so that neighbours are simplified alike, drops them
before the encoder sees them: on the demo that is 10–25 % fewer bytes and, as the
encoder has fewer vertices to clip and snap, faster than no simplification. A
topology-preserving simplification gives the same tiles (the unit grid hides
what it protects) at 2–4 times the time. From :data:`FULL_DETAIL_ZOOM` on,
geometries go out as stored.

Two ``MATERIALIZED`` steps: the rows the index finds (``found``), then their tile
geometries (``features``). Inlined, PostgreSQL would push the ``geom IS NOT NULL``
test down into the scan and compute ``ST_AsMVTGeom`` twice per row, once for the
test and once for the tile (30–40 % of a dense tile); and with the costly
functions in the scan itself it plans a parallel scan, whose worker on a busy
machine lengthens the slowest tiles. Over ``found`` the functions run serially,
once per row.

Grids may carry the incident count and Gi* class of a time window: those
numbers come from the service (Gi* is computed in Python, cached per data
version) and join the tile's rows as three arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

__all__ = [
    "AREA_LAYERS",
    "EXTENT",
    "FULL_DETAIL_ZOOM",
    "GridNumbers",
    "area_tile",
    "theme_tile",
    "tolerance_m",
]

#: Tile layer name → area level.
AREA_LAYERS: dict[str, str] = {
    "streets": "street",
    "communities": "community",
    "grids": "grid",
    "micro_grids": "micro_grid",
}
#: Tile coordinate units per tile side (the MVT default).
EXTENT = 4096
#: Pixels of a tile's margin kept around clipped geometries (outlines stay whole).
BUFFER = 64
#: From this zoom on (a tile unit ≈ 2.4 cm at z16), geometries are not simplified.
FULL_DETAIL_ZOOM = 16
_EARTH_M = 40_075_016.685578488  # Web Mercator's width at the equator


def tolerance_m(z: int) -> float:
    """Simplification tolerance at zoom ``z``, Web Mercator metres: one tile unit."""
    return 0.0 if z >= FULL_DETAIL_ZOOM else _EARTH_M / (2**z) / EXTENT


@dataclass(frozen=True)
class GridNumbers:
    """Incident count and Gi* class (-3…3) per grid code, for the grids layer."""

    codes: Sequence[str]
    counts: Sequence[int | None]
    classes: Sequence[int | None]


# The envelope (Web Mercator, for ST_AsMVTGeom) and its margin in WGS84 (for the index).
_BOUNDS = """
bounds AS (
    SELECT ST_TileEnvelope(CAST(:z AS int), CAST(:x AS int), CAST(:y AS int)) AS merc,
           ST_Transform(ST_TileEnvelope(CAST(:z AS int), CAST(:x AS int), CAST(:y AS int),
                                        margin => CAST(:margin AS float8)), 4326) AS geo
)"""
_SHAPE = (
    "ST_AsMVTGeom(CASE WHEN CAST(:tol AS float8) > 0 THEN ST_Simplify("
    "ST_Transform({g}, 3857), CAST(:tol AS float8), true) ELSE ST_Transform({g}, 3857) END, "
    "bounds.merc, CAST(:extent AS int), CAST(:buffer AS int), true) AS geom"
)
_NUMBERS = """
numbers AS (
    SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:counts AS int[]), CAST(:classes AS int[]))
        AS n(code, incidents, hot)
)"""


def _params(z: int, x: int, y: int) -> dict:
    return {
        "z": z,
        "x": x,
        "y": y,
        "margin": BUFFER / EXTENT,
        "tol": tolerance_m(z),
        "extent": EXTENT,
        "buffer": BUFFER,
    }


def area_tile(
    conn: Connection,
    layer: str,
    generation_id: int,
    z: int,
    x: int,
    y: int,
    numbers: GridNumbers | None = None,
) -> bytes:
    """The tile ``z/x/y`` of one level of a generation: ``code, name, level, kind`` per area.

    With ``numbers`` (grids only), also ``incidents`` (count) and ``hot`` (Gi* class)
    where the arrays have a value; an area without them carries neither. An empty
    tile is zero bytes.
    """
    level = AREA_LAYERS[layer]
    extra, join, ctes = "", "", [_BOUNDS]
    if numbers is not None:
        extra = ", numbers.incidents, numbers.hot"
        join = "LEFT JOIN numbers ON numbers.code = a.code"
        ctes.append(_NUMBERS)
    sql = f"""
WITH {", ".join(ctes)},
found AS MATERIALIZED (
    SELECT a.code, a.name, a.level, a.kind{extra}, a.geom
    FROM bounds, area a {join}
    WHERE a.geom && bounds.geo AND a.level = :level
      AND a.generation_low <= :gen AND a.generation_high >= :gen
),
features AS MATERIALIZED (
    SELECT f.code, f.name, f.level, f.kind{extra.replace("numbers.", "f.")},
           {_SHAPE.format(g="f.geom")}
    FROM bounds, found f
)
SELECT ST_AsMVT(features, CAST(:layer AS text), CAST(:extent AS int), 'geom')
FROM features WHERE geom IS NOT NULL
"""
    params = _params(z, x, y) | {"level": level, "gen": generation_id, "layer": layer}
    if numbers is not None:
        params |= {
            "codes": list(numbers.codes),
            "counts": list(numbers.counts),
            "classes": list(numbers.classes),
        }
    return bytes(conn.execute(text(sql), params).scalar_one() or b"")


def theme_tile(
    conn: Connection, theme: str, generation_id: int, z: int, x: int, y: int
) -> bytes | None:
    """The tile of thematic layer ``theme``: ``code, name, theme`` per unit.

    None when the generation has no such layer; an empty tile is zero bytes.
    """
    found = conn.execute(
        text("SELECT id FROM thematic_layer WHERE generation_id = :gen AND theme = :theme"),
        {"gen": generation_id, "theme": theme},
    ).scalar_one_or_none()
    if found is None:
        return None
    sql = f"""
WITH {_BOUNDS},
found AS MATERIALIZED (
    SELECT u.code, u.name, u.geom
    FROM bounds, thematic_unit u
    WHERE u.geom && bounds.geo AND u.layer_id = :layer_id
),
features AS MATERIALIZED (
    SELECT f.code, f.name, CAST(:theme AS text) AS theme, {_SHAPE.format(g="f.geom")}
    FROM bounds, found f
)
SELECT ST_AsMVT(features, CAST(:layer AS text), CAST(:extent AS int), 'geom')
FROM features WHERE geom IS NOT NULL
"""
    params = _params(z, x, y) | {"theme": theme, "layer_id": found, "layer": f"layer_{theme}"}
    return bytes(conn.execute(text(sql), params).scalar_one() or b"")
