"""What the map pages draw, as GeoDataFrames: the only module of app/maps that reads the database.

:class:`MapData` holds one generation's areas (per level), its staff roster and the
incidents with their assignment under the active generation. It comes from the
database (:func:`load_map_data`) or, for notebooks and benchmarks, straight from a
generated demo district (:meth:`MapData.from_demo`); the page builders cannot tell.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, func, select

from app.db import repo
from app.db.models import Area, Generation, Incident, IncidentAssignment, Staff
from app.db.repo import NotFoundError
from gis.codes import LEVELS
from gis.errors import GridmapError

__all__ = ["INCIDENT_COLUMNS", "LOCAL_TZ", "MapData", "data_fingerprint", "load_map_data"]

LOCAL_TZ = "Asia/Shanghai"  # report times are read and shown as China Standard Time
#: Columns of :attr:`MapData.incidents`.
INCIDENT_COLUMNS = (
    "id",
    "source",
    "category",
    "reported_at",
    "status",
    "location_status",
    "street_code",
    "community_code",
    "grid_code",
    "micro_grid_code",
    "assign_status",
    "distance_m",
    "lon",
    "lat",
)
_TEXT = (
    "source",
    "category",
    "status",
    "location_status",
    "street_code",
    "community_code",
    "grid_code",
    "micro_grid_code",
    "assign_status",
)
# A constant statement (COPY takes no bound parameters; nothing here comes from a caller).
# Incidents are read with COPY and parsed by Arrow: row-by-row fetching of 50,000
# incidents through the driver and pandas takes seconds, COPY a fraction of one.
_INCIDENT_COPY = (
    "COPY (SELECT id, source, category, EXTRACT(EPOCH FROM reported_at)::float8 AS reported_at, "
    "status, location_status, street_code, community_code, grid_code, micro_grid_code, "
    "assign_status, distance_m, ST_X(location) AS lon, ST_Y(location) AS lat "
    "FROM incident_current ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)"
)


@dataclass
class MapData:
    """One generation's areas, staff and the incidents assigned under it.

    Attributes
    ----------
    generation : dict
        ``id`` and ``label``.
    areas : dict of str to geopandas.GeoDataFrame
        Per level of :data:`gis.codes.LEVELS` present: ``code, name, level, kind,
        parent_code, population, households, responsible`` and the geometry,
        EPSG:4326, sorted by code.
    staff : pandas.DataFrame
        ``name, role, area_code, phone``.
    incidents : pandas.DataFrame
        :data:`INCIDENT_COLUMNS`; ``reported_at`` in Asia/Shanghai, ``lon``/``lat``
        WGS84 (NaN when unlocated).
    fingerprint : tuple
        Changes whenever the data would: the cache key of everything built from it.
    """

    generation: dict
    areas: dict[str, gpd.GeoDataFrame]
    staff: pd.DataFrame
    incidents: pd.DataFrame
    fingerprint: tuple = ()
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def level(self, level: str) -> gpd.GeoDataFrame:
        """The areas of ``level`` (an empty frame when the generation has none)."""
        found = self.areas.get(level)
        if found is None:
            return gpd.GeoDataFrame(
                {"code": [], "name": [], "level": [], "parent_code": []},
                geometry=gpd.GeoSeries([], crs=4326),
                crs=4326,
            )
        return found

    def all_areas(self) -> gpd.GeoDataFrame:
        """Every level in one frame, top to bottom."""
        frames = [self.areas[lv] for lv in LEVELS if lv in self.areas]
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)

    @classmethod
    def from_demo(cls, demo: Any) -> MapData:
        """Map data straight from a :class:`gis.demo.DemoDistrict`, without a database.

        Incidents are assigned in memory with :class:`gis.hierarchy.HierarchyIndex`
        (the rule the database applies); address-only reports sit at their door
        plate, as the gazetteer geocoder would place them.
        """
        from gis.coverage import incident_lonlat
        from gis.hierarchy import HierarchyIndex

        areas = {
            lv: frame
            for lv, frame in zip(
                LEVELS,
                [demo.district, demo.streets, demo.communities, demo.grids, demo.micro_grids],
                strict=True,
            )
        }
        src = demo.incidents
        lon, lat = incident_lonlat(src)
        missing = np.isnan(lon)
        lon[missing], lat[missing] = (
            src["true_lon"].to_numpy()[missing],
            src["true_lat"].to_numpy()[missing],
        )
        assigned = HierarchyIndex(demo.areas()).assign_xy(lon, lat)
        incidents = pd.DataFrame(
            {
                "id": np.arange(1, len(src) + 1),
                "source": src["source"].to_numpy(),
                "category": src["category"].to_numpy(),
                "reported_at": pd.to_datetime(src["reported_at"]).dt.tz_convert(LOCAL_TZ).array,
                "status": "reported",
                "location_status": np.where(missing, "geocoded", "located"),
                **{c: assigned[c].to_numpy() for c in assigned.columns},
                "lon": lon,
                "lat": lat,
            }
        )
        generation = {"id": 0, "label": f"demo {demo.seed} (in memory)"}
        return cls(
            generation,
            areas,
            demo.staff[["name", "role", "area_code", "phone"]].copy(),
            incidents[list(INCIDENT_COLUMNS)],
            ("demo", demo.seed, id(demo)),
        )


def load_map_data(conn: Connection, generation: str | None = None) -> MapData:
    """The areas, staff and incidents of a generation (default: the active one).

    Raises
    ------
    NotFoundError
        For an unknown generation, or no active one.
    GridmapError
        If the generation has no grids.
    """
    gen = repo.get_generation(conn, generation) if generation else repo.active_generation(conn)
    if gen is None:
        raise NotFoundError(
            f"no generation {generation!r}"
            if generation
            else "no active generation: import areas or run `gridmap demo` first"
        )
    fingerprint = data_fingerprint(conn)
    every = repo.areas_frame(conn, gen.id)
    areas = {
        lv: every[every["level"] == lv].reset_index(drop=True)
        for lv in LEVELS
        if (every["level"] == lv).any()
    }
    if "grid" not in areas:
        raise GridmapError(f"generation {gen.label!r} has no grids to map")
    return MapData(
        {"id": gen.id, "label": gen.label},
        areas,
        _staff(conn, gen.id),
        _incidents(conn),
        (gen.id, *fingerprint),
    )


def _staff(conn: Connection, generation_id: int) -> pd.DataFrame:
    rows = conn.execute(
        select(Staff.name, Staff.role, Staff.area_code, Staff.phone)
        .where(Staff.generation_id == generation_id)
        .order_by(Staff.area_code, Staff.id)
    ).all()
    return pd.DataFrame(rows, columns=["name", "role", "area_code", "phone"])


def _incidents(conn: Connection) -> pd.DataFrame:
    raw = conn.connection.driver_connection
    assert raw is not None
    buffer = io.BytesIO()
    with raw.cursor() as cursor, cursor.copy(_INCIDENT_COPY) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    types = {c: pa.string() for c in _TEXT} | {
        "id": pa.int64(),
        "reported_at": pa.float64(),
        "distance_m": pa.float64(),
        "lon": pa.float64(),
        "lat": pa.float64(),
    }
    table = pa_csv.read_csv(buffer, convert_options=pa_csv.ConvertOptions(column_types=types))
    frame = table.to_pandas()
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], unit="s", utc=True).dt.tz_convert(
        LOCAL_TZ
    )
    for column in _TEXT:  # plain objects with None: what gis/ and folium expect
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame[list(INCIDENT_COLUMNS)]


def data_fingerprint(conn: Connection) -> tuple:
    """Changes when the active generation, areas, staff, incidents or assignments change.

    Counts and maxima of ids, in one round trip: cheap enough to ask before
    serving a cached page.
    """
    active = select(Generation.id).where(Generation.is_active).scalar_subquery()
    assignment = IncidentAssignment.__table__
    row = conn.execute(
        select(
            active,
            select(func.coalesce(func.max(Area.id), 0)).scalar_subquery(),
            select(func.count()).select_from(Area).scalar_subquery(),
            select(func.coalesce(func.max(Staff.id), 0)).scalar_subquery(),
            select(func.count()).select_from(Staff).scalar_subquery(),
            select(func.coalesce(func.max(Incident.id), 0)).scalar_subquery(),
            select(func.count()).select_from(Incident).scalar_subquery(),
            select(func.max(assignment.c.assigned_at))
            .where(assignment.c.generation_id == active)
            .scalar_subquery(),
        )
    ).one()
    return tuple(row)
