"""The SQL of thematic layers: themes beside a generation and their units.

A theme (``thematic_layer``) belongs to one generation; its units
(``thematic_unit``) carry the department's own codes. Units are written with
COPY like areas, and served as GeoJSON text assembled by PostGIS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import ColumnElement, Connection, Table, func, select

from app.db.bulk import copy_frame
from app.db.models import Generation, ThematicLayer, ThematicUnit
from app.db.queries import _feature_text, _geometry, _in_bbox, _page

__all__ = [
    "LayerInfo",
    "copy_units",
    "create_layer",
    "delete_layer",
    "find_layer",
    "layer_stamp",
    "list_layers",
    "unit_codes",
    "unit_extent",
    "unit_feature",
    "unit_features",
    "units_frame",
]

LAYER = cast(Table, ThematicLayer.__table__)
UNIT = cast(Table, ThematicUnit.__table__)
GENERATION = cast(Table, Generation.__table__)

#: A unit's attributes as served (everything but its geometry).
UNIT_PROPERTIES = ("code", "name", "area_m2")


@dataclass(frozen=True)
class LayerInfo:
    """A row of ``thematic_layer`` with its generation's label and its number of units."""

    id: int
    generation_id: int
    generation: str
    theme: str
    source: str | None
    batch_id: int | None
    created_at: datetime
    units: int


def _layers_query():
    units = (
        select(func.count())
        .select_from(UNIT)
        .where(UNIT.c.layer_id == LAYER.c.id)
        .scalar_subquery()
        .label("units")
    )
    return (
        select(
            LAYER.c.id,
            LAYER.c.generation_id,
            GENERATION.c.label.label("generation"),
            LAYER.c.theme,
            LAYER.c.source,
            LAYER.c.batch_id,
            LAYER.c.created_at,
            units,
        )
        .join(GENERATION, GENERATION.c.id == LAYER.c.generation_id)
        .order_by(LAYER.c.generation_id, LAYER.c.theme)
    )


def list_layers(conn: Connection, generation_id: int | None = None) -> list[LayerInfo]:
    """Every theme (of one generation, when given), by generation and theme."""
    query = _layers_query()
    if generation_id is not None:
        query = query.where(LAYER.c.generation_id == generation_id)
    return [LayerInfo(**row) for row in conn.execute(query).mappings()]


def find_layer(conn: Connection, generation_id: int, theme: str) -> LayerInfo | None:
    query = _layers_query().where(LAYER.c.generation_id == generation_id, LAYER.c.theme == theme)
    row = conn.execute(query).mappings().first()
    return LayerInfo(**row) if row else None


def create_layer(
    conn: Connection, generation_id: int, theme: str, source: str | None, batch_id: int | None
) -> int:
    return conn.execute(
        LAYER.insert()
        .values(generation_id=generation_id, theme=theme, source=source, batch_id=batch_id)
        .returning(LAYER.c.id)
    ).scalar_one()


def delete_layer(conn: Connection, layer_id: int) -> int:
    """Delete a theme and its units (they cascade); returns the number of units deleted."""
    units = conn.execute(
        select(func.count()).select_from(UNIT).where(UNIT.c.layer_id == layer_id)
    ).scalar_one()
    conn.execute(LAYER.delete().where(LAYER.c.id == layer_id))
    return units


def copy_units(conn: Connection, layer_id: int, units: gpd.GeoDataFrame) -> int:
    """COPY prepared units (``gis.layers.UNIT_COLUMNS``) into a theme."""
    if len(units) == 0:
        return 0
    geoms = units.geometry.to_numpy()  # MultiPolygons already (gis.layers.prepare_units)
    rows = pd.DataFrame(
        {
            "layer_id": layer_id,
            "code": units["code"].to_numpy(),
            "name": units["name"].to_numpy(),
            "area_m2": units["area_m2"].to_numpy(dtype=float),
            "geom": shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True),
        }
    )
    return copy_frame(conn, "thematic_unit", rows)


def unit_codes(conn: Connection, layer_id: int) -> set[str]:
    return set(conn.execute(select(UNIT.c.code).where(UNIT.c.layer_id == layer_id)).scalars())


def units_frame(conn: Connection, layer_id: int) -> gpd.GeoDataFrame:
    """A theme's units (code, name, area_m2, geometry) in EPSG:4326, by code."""
    query = (
        select(*[UNIT.c[c] for c in UNIT_PROPERTIES], func.ST_AsBinary(UNIT.c.geom).label("wkb"))
        .where(UNIT.c.layer_id == layer_id)
        .order_by(UNIT.c.code)
    )
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[*UNIT_PROPERTIES, "wkb"])
    geometry = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy()) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)


def layer_stamp(conn: Connection, generation_id: int | None = None) -> tuple:
    """Changes whenever a theme of the generation (or of any) is added, replaced or deleted.

    Units added to a theme count too; the time of the newest theme tells a
    theme from one stored under the same id after the tables were emptied.
    """
    units = select(func.count()).select_from(UNIT).where(UNIT.c.layer_id == LAYER.c.id)
    query = select(
        func.count(),
        func.coalesce(func.max(LAYER.c.id), 0),
        func.max(LAYER.c.created_at),
        func.coalesce(func.sum(units.scalar_subquery()), 0),
    )
    if generation_id is not None:
        query = query.where(LAYER.c.generation_id == generation_id)
    return tuple(conn.execute(query).one())


# -- features for the OGC API ------------------------------------------------------------
def _unit_properties() -> ColumnElement:
    pairs: list[Any] = []
    for name in UNIT_PROPERTIES:
        pairs += [name, UNIT.c[name]]
    return func.json_build_object(*pairs)


_UNIT_FEATURE = {
    flip: _feature_text(UNIT.c.code, _geometry(UNIT.c.geom, flip), _unit_properties())
    for flip in (False, True)
}


def unit_features(
    conn: Connection,
    layer_id: int,
    limit: int,
    offset: int,
    *,
    code: str | None = None,
    bbox: Any = None,
    lat_first: bool = False,
) -> tuple[int, list[str]]:
    """A page of a theme's units as GeoJSON Feature texts, by code, and the number matched."""
    where = [UNIT.c.layer_id == layer_id]
    if code is not None:
        where.append(UNIT.c.code == code)
    if bbox is not None:
        where.append(_in_bbox(UNIT.c.geom, bbox))
    query = select().select_from(UNIT).where(*where).order_by(UNIT.c.code)
    count = select(func.count()).select_from(UNIT).where(*where)
    return _page(conn, query, _UNIT_FEATURE[lat_first], limit, offset, count)


def unit_feature(conn: Connection, layer_id: int, code: str, lat_first: bool = False) -> str | None:
    return conn.execute(
        select(_UNIT_FEATURE[lat_first]).where(UNIT.c.layer_id == layer_id, UNIT.c.code == code)
    ).scalar_one_or_none()


def unit_extent(conn: Connection, layer_id: int) -> list[float] | None:
    extent = func.ST_Extent(UNIT.c.geom)
    row = conn.execute(
        select(
            func.ST_XMin(extent), func.ST_YMin(extent), func.ST_XMax(extent), func.ST_YMax(extent)
        ).where(UNIT.c.layer_id == layer_id)
    ).one()
    return None if row[0] is None else [float(v) for v in row]
