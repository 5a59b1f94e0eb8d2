"""Vector tiles of the areas and thematic layers, with the incident numbers a caller may see.

The geometry comes from PostGIS (:mod:`app.db.tiles`); the incident count and
Gi* class of the grids come from :func:`app.services.analysis.grid_stats`, cached
per data version on the :class:`~app.services.map_data.MapData`. Who sees which
numbers follows the sign-in rule of the map pages: an anonymous caller gets
boundaries only; a key scoped to an area gets numbers for the grids inside it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from shapely.geometry import box
from sqlalchemy import Connection

from app.db import layers as db_layers
from app.db import tiles as db_tiles
from app.errors import NotFoundError
from app.services.analysis import Selection, grid_stats
from app.services.data_version import DataVersion
from app.services.map_data import MapData, MapDataCache
from app.services.security import Principal
from gis.errors import ValidationError

__all__ = [
    "MAX_ZOOM",
    "MEDIA_TYPE",
    "TileRequest",
    "grid_numbers",
    "layer_names",
    "render_tile",
    "tile_bounds",
    "tile_etag",
    "tile_version",
]

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Deepest zoom served (a tile unit is then about 1 mm).
MAX_ZOOM = 24
_THEME_PREFIX = "layer_"


@dataclass(frozen=True)
class TileRequest:
    """One tile: layer, zoom and column/row (XYZ, row 0 at the north)."""

    layer: str
    z: int
    x: int
    y: int

    def check(self) -> None:
        """Raise :class:`ValidationError` for a tile outside the zoom's grid."""
        side = 2**self.z
        if not (0 <= self.x < side and 0 <= self.y < side):
            raise ValidationError(
                f"no tile {self.x}/{self.y} at zoom {self.z}: x and y run from 0 to {side - 1}"
            )

    @property
    def theme(self) -> str | None:
        """The theme of a ``layer_{theme}`` layer, else None."""
        return (
            self.layer.removeprefix(_THEME_PREFIX) if self.layer.startswith(_THEME_PREFIX) else None
        )


def layer_names(themes: list[str]) -> list[str]:
    """Every tile layer: the area levels, then one per thematic layer."""
    return [*db_tiles.AREA_LAYERS, *(_THEME_PREFIX + t for t in themes)]


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """WGS84 ``(west, south, east, north)`` of tile ``z/x/y``."""
    side = 2.0**z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / side))))

    return x / side * 360 - 180, lat(y + 1), (x + 1) / side * 360 - 180, lat(y)


def shows_numbers(principal: Principal | None, layer: str) -> bool:
    """Incident numbers go to signed-in or keyed callers only, and only on the grids layer."""
    return principal is not None and layer == "grids"


def grid_numbers(
    data: MapData,
    selection: Selection,
    principal: Principal,
    permutations: int,
    bounds: tuple[float, float, float, float] | None = None,
) -> db_tiles.GridNumbers:
    """Count and Gi* class of the grids the principal may see (those near ``bounds``).

    Only grids whose box meets ``bounds`` are sent to the database with the tile:
    the rest could not be in it.
    """
    stats = grid_stats(data, selection, permutations)
    if bounds is not None and len(stats):
        stats = stats.iloc[np.sort(stats.sindex.query(box(*bounds)))]
    visible = np.array([principal.sees(c) for c in stats["code"]], dtype=bool)
    stats = stats[visible]
    # Gi* weighs each grid against its neighbours, inside the scope or not: a scoped
    # caller's class would leak the counts around it, so (as on the scoped map) none.
    classes = [None if principal.area else int(v) for v in stats["bin"]]
    return db_tiles.GridNumbers(
        [str(c) for c in stats["code"]],
        [int(v) for v in stats["count"].fillna(0)],
        classes,
    )


def render_tile(
    conn: Connection,
    request: TileRequest,
    generation_id: int,
    numbers: db_tiles.GridNumbers | None = None,
) -> bytes:
    """The encoded tile (zero bytes when nothing is in it).

    Raises
    ------
    NotFoundError
        For a layer that is neither an area level nor a thematic layer of the generation.
    ValidationError
        For a tile outside its zoom's grid.
    """
    request.check()
    if request.layer in db_tiles.AREA_LAYERS:
        return db_tiles.area_tile(
            conn, request.layer, generation_id, request.z, request.x, request.y, numbers
        )
    theme = request.theme
    found = None
    if theme is not None:
        found = db_tiles.theme_tile(conn, theme, generation_id, request.z, request.x, request.y)
    if found is None:
        themes = [layer.theme for layer in db_layers.list_layers(conn, generation_id)]
        raise NotFoundError(
            f"no tile layer {request.layer!r}; layers are {', '.join(layer_names(themes))}"
        )
    return found


def tile_version(
    version: DataVersion, map_data: MapDataCache, request: TileRequest, numbers: bool
) -> Hashable:
    """What a tile's ``ETag`` follows; for the area levels, read from memory at once
    (:meth:`DataVersion.latest`), never waiting for the database.

    Boundary tiles follow the areas (and themes) only, so a new incident leaves their
    validators alone; tiles with incident numbers follow the incidents too. A thematic
    layer's tile also follows the themes' own stamp, as the map pages do.
    """
    if request.theme is not None:
        return map_data.version()
    fingerprint = version.latest()
    return fingerprint if numbers else fingerprint.areas


def tile_etag(
    version: Hashable, request: TileRequest, generation: Hashable, extra: Hashable
) -> str:
    """A strong validator of one tile: the data version, the tile and what selects its numbers."""
    text = repr((version, request, generation, extra))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
