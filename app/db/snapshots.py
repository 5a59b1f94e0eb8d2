"""The reads behind what the app keeps in memory: the data version, lookup labels, map frames.

The lookup registry (:mod:`app.services.registry`) and the map data
(:mod:`app.services.map_data`) are snapshots of the same tables. Both ask
:func:`data_fingerprint` whether their snapshot is stale, and read what they
hold through the functions below (and :func:`app.db.staff.staff_frame`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, func, select, text

from app.db.models import (
    Area,
    Generation,
    Incident,
    IncidentAssignment,
    Staff,
    ThematicLayer,
    ThematicUnit,
)
from gis.vocabulary import LOCAL_TIMEZONE

__all__ = [
    "INCIDENT_COLUMNS",
    "DataFingerprint",
    "IncidentFilter",
    "area_labels",
    "areas_stamp",
    "current_incidents",
    "data_fingerprint",
    "database_identity",
    "incident_counts",
    "incident_sample",
    "level_stamps",
    "uncovered_incidents",
]

# Incident columns read as numbers; every other one is text.
_NUMBERS = {
    "id": pa.int64(),
    "reported_at": pa.float64(),
    "distance_m": pa.float64(),
    "lon": pa.float64(),
    "lat": pa.float64(),
}
#: Columns of :func:`current_incidents`.
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
_TEXT = tuple(c for c in INCIDENT_COLUMNS if c not in _NUMBERS)
# A constant statement (COPY takes no bound parameters; nothing here comes from a caller).
# Incidents are read with COPY and parsed by Arrow: row-by-row fetching of 50,000
# incidents through the driver and pandas takes seconds, COPY a fraction of one.
_INCIDENT_COPY = (
    "COPY (SELECT id, source, category, EXTRACT(EPOCH FROM reported_at)::float8 AS reported_at, "
    "status, location_status, street_code, community_code, grid_code, micro_grid_code, "
    "assign_status, distance_m, ST_X(location) AS lon, ST_Y(location) AS lat "
    "FROM incident_current ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)"
)


@dataclass(frozen=True)
class DataFingerprint:
    """Counts and maxima of ids that change whenever the data would.

    Attributes
    ----------
    areas : tuple
        The active generation, its areas and staff, and the thematic layers: what the
        lookup index is built from.
    incidents : tuple
        Incidents and their assignments under the active generation: what the maps
        count in addition.
    """

    areas: tuple
    incidents: tuple


def data_fingerprint(conn: Connection) -> DataFingerprint:
    """The current :class:`DataFingerprint`, in one round trip.

    Cheap enough to ask before serving a cached page.
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
            # Themes (多格合一): a replaced theme gets a new id, added units a new count.
            select(func.coalesce(func.max(ThematicLayer.id), 0)).scalar_subquery(),
            select(func.count()).select_from(ThematicLayer).scalar_subquery(),
            select(func.count()).select_from(ThematicUnit).scalar_subquery(),
        )
    ).one()
    return DataFingerprint(tuple(row[:5]) + tuple(row[8:]), tuple(row[5:8]))


def area_labels(conn: Connection, generation_id: int) -> dict[str, tuple[Any, str, Any]]:
    """``code → (name, level, kind)`` of every area of a generation."""
    rows = conn.execute(
        select(Area.code, Area.name, Area.level, Area.kind).where(
            Area.generation_low <= generation_id, Area.generation_high >= generation_id
        )
    ).all()
    return {code: (name, level, kind) for code, name, level, kind in rows}


def current_incidents(conn: Connection) -> pd.DataFrame:
    """Every incident with its assignment under the active generation.

    :data:`INCIDENT_COLUMNS`; ``reported_at`` in China Standard Time, ``lon``/``lat``
    WGS84 (NaN when unlocated), missing text as None.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    buffer = io.BytesIO()
    with raw.cursor() as cursor, cursor.copy(_INCIDENT_COPY) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    types = {c: pa.string() for c in _TEXT} | _NUMBERS
    table = pa_csv.read_csv(buffer, convert_options=pa_csv.ConvertOptions(column_types=types))
    frame = table.to_pandas()
    # A time pandas cannot hold (a row stored before the door check, year 1 or 9999) becomes
    # NaT for that incident instead of failing the map and the analyses for everyone.
    frame["reported_at"] = pd.to_datetime(
        frame["reported_at"], unit="s", utc=True, errors="coerce"
    ).dt.tz_convert(LOCAL_TIMEZONE)
    for column in _TEXT:  # plain objects with None: what gis/ and folium expect
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame[list(INCIDENT_COLUMNS)]


def database_identity(conn: Connection) -> str:
    """Which database this is, beyond its name: something a re-created one does not share.

    The cluster's system identifier (when this role may read it) and the
    database's oid, which a dropped and re-created database of the same name
    does not get back.
    """
    name, oid = conn.execute(
        text("SELECT current_database(), oid FROM pg_database WHERE datname = current_database()")
    ).one()
    system = None
    if conn.execute(
        text("SELECT has_function_privilege('pg_control_system()', 'execute')")
    ).scalar():
        system = conn.execute(text("SELECT system_identifier FROM pg_control_system()")).scalar()
    return f"{system}/{name}/{oid}"


def areas_stamp(conn: Connection, generation_id: int, levels: Sequence[str]) -> tuple[int, str]:
    """Count and digest of a generation's area rows at ``levels``: changes with any of them.

    Rows are identified by id and ``xmin`` (the transaction that wrote the row
    version), so an area added, removed, carried into the generation or updated
    in place changes the digest.
    """
    row = conn.execute(
        text(
            "SELECT count(*), md5(string_agg(id::text || '.' || xmin::text, ',' ORDER BY id)) "
            "FROM area WHERE generation_low <= :g AND generation_high >= :g "
            "AND level = ANY(:levels)"
        ),
        {"g": generation_id, "levels": list(levels)},
    ).one()
    return int(row[0]), row[1] or ""


def level_stamps(conn: Connection, generation_id: int) -> dict[str, tuple[int, str]]:
    """Per level: :func:`areas_stamp` of a generation's areas at that level, in one query."""
    rows = conn.execute(
        text(
            "SELECT level, count(*), md5(string_agg(id::text || '.' || xmin::text, ',' "
            "ORDER BY id)) FROM area WHERE generation_low <= :g AND generation_high >= :g "
            "GROUP BY level"
        ),
        {"g": generation_id},
    ).all()
    return {level: (int(count), digest or "") for level, count, digest in rows}


# -- incidents counted in the database ---------------------------------------------------
# Only what the pandas snapshot could hold (pd.Timestamp's range): a time outside it is
# NaT there, which no window selects.
_PANDAS_TIMES = "i.reported_at BETWEEN '1677-09-22 00:00:00+00' AND '2262-04-11 00:00:00+00'"
_ACTIVE = "(SELECT g.id FROM generation g WHERE g.is_active)"


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents count, as :class:`app.services.analysis.Selection` says: a half-open
    window on ``reported_at``, category prefixes and exact sources (empty: all)."""

    start: Any = None
    end: Any = None
    category: tuple[str, ...] = ()
    source: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return self.start is None and self.end is None and not self.category and not self.source

    def where(self) -> tuple[str, dict[str, Any]]:
        """The SQL condition on ``incident i`` and its parameters."""
        parts, params = ["TRUE"], {}
        if self.start is not None or self.end is not None:
            parts.append(_PANDAS_TIMES)
        if self.start is not None:
            parts.append("i.reported_at >= :start")
            params["start"] = self.start
        if self.end is not None:
            parts.append("i.reported_at < :end")
            params["end"] = self.end
        if self.category:
            parts.append("i.category LIKE ANY(:categories)")
            params["categories"] = [_escape_like(c) + "%" for c in self.category]
        if self.source:
            parts.append("i.source = ANY(:sources)")
            params["sources"] = list(self.source)
        return " AND ".join(parts), params


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def incident_counts(
    conn: Connection, chosen: IncidentFilter, micro_grids: bool = False
) -> pd.DataFrame:
    """Incidents of ``chosen`` per grid (and micro-grid) under the active generation.

    ``grid_code, n`` (with ``micro_grids``: ``grid_code, micro_grid_code, n``); a row
    with no grid holds those no grid took (unassigned or outside). Without a filter the
    assignments alone are counted (per grid: the index on ``(generation_id,
    grid_code)``), and the incidents without an assignment are left to the caller (the
    incident count it knows).
    """
    keys = "a.grid_code, a.micro_grid_code" if micro_grids else "a.grid_code"
    if chosen.everything:
        query = (
            f"SELECT {keys}, count(*) AS n FROM incident_assignment a "
            f"WHERE a.generation_id = {_ACTIVE} AND a.grid_code IS NOT NULL GROUP BY {keys}"
        )
        params: dict[str, Any] = {}
    else:
        where, params = chosen.where()
        query = (
            f"SELECT {keys}, count(*) AS n FROM incident i "
            "LEFT JOIN incident_assignment a ON a.incident_id = i.id "
            f"AND a.generation_id = {_ACTIVE} WHERE {where} GROUP BY {keys}"
        )
    # plain tuples: a frame from 40,000 row objects costs most of a second
    rows = [tuple(row) for row in conn.execute(text(query), params)]
    columns = ["grid_code", "micro_grid_code", "n"] if micro_grids else ["grid_code", "n"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns[:-1]:  # plain objects with None, like the incident frame
        frame[column] = frame[column].astype(object)
    frame["n"] = frame["n"].astype(np.int64)
    return frame


def uncovered_incidents(conn: Connection) -> pd.DataFrame:
    """Located incidents the active generation's assignment did not find in a grid:
    ``id, lon, lat``.

    Those assigned ``snapped`` or ``outside``, and those not assigned at all: the only
    ones a coverage check can find outside every grid (every other one was found
    covered by a grid).
    """
    result = conn.execute(
        text(
            "SELECT i.id, ST_X(i.location) AS lon, ST_Y(i.location) AS lat FROM incident i "
            "LEFT JOIN incident_assignment a ON a.incident_id = i.id "
            f"AND a.generation_id = {_ACTIVE} WHERE i.location IS NOT NULL "
            "AND (a.incident_id IS NULL OR a.assign_status IN ('snapped', 'outside')) "
            "ORDER BY i.id"
        )
    )
    rows = [tuple(row) for row in result]
    return pd.DataFrame(
        {
            "id": np.array([r[0] for r in rows], dtype=np.int64),
            "lon": np.array([r[1] for r in rows], dtype=float),
            "lat": np.array([r[2] for r in rows], dtype=float),
        }
    )


def incident_sample(
    conn: Connection, chosen: IncidentFilter, percent: float, seed: int = 0
) -> pd.DataFrame:
    """About ``percent`` % of the located incidents of ``chosen`` (a repeatable sample).

    ``id, source, category, reported_at, lon, lat`` like :func:`current_incidents`,
    ordered by id: what a clustered layer draws when the city has a million.
    """
    where, params = chosen.where()
    rows = conn.execute(
        text(
            "SELECT i.id, i.source, i.category, "
            "EXTRACT(EPOCH FROM i.reported_at)::float8 AS reported_at, "
            "ST_X(i.location) AS lon, ST_Y(i.location) AS lat FROM incident i "
            "TABLESAMPLE BERNOULLI (:percent) REPEATABLE (:seed) "
            f"WHERE i.location IS NOT NULL AND {where} ORDER BY i.id"
        ),
        {**params, "percent": float(min(max(percent, 0.0), 100.0)), "seed": int(seed)},
    )
    frame = pd.DataFrame(
        [tuple(row) for row in rows],
        columns=["id", "source", "category", "reported_at", "lon", "lat"],
    )
    for column in ("source", "category"):  # plain objects with None, like the incident frame
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame["reported_at"] = pd.to_datetime(
        frame["reported_at"].astype(float), unit="s", utc=True, errors="coerce"
    ).dt.tz_convert(LOCAL_TIMEZONE)
    frame[["lon", "lat"]] = frame[["lon", "lat"]].astype(float)
    return frame
