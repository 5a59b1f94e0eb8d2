"""Repository functions: generations, areas, staff and import batches.

Bulk writes go through PostgreSQL COPY (geometries as hex EWKB), never one
ORM insert per row: the demo alone is ~7,000 areas and 50,000 incidents.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Row, Table, func, select, text, update
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table

from app.db.bulk import copy_frame, copy_rows
from app.db.incidents import INCIDENT_EXPORT_COLUMNS
from app.db.models import Area, Generation, ImportBatch, RejectedRow
from gis.areas import AREA_COLUMNS


@dataclass(frozen=True)
class GenerationInfo:
    """A row of ``generation``, detached from any connection."""

    id: int
    label: str
    is_active: bool
    created_at: datetime
    activated_at: datetime | None
    note: str | None


# Declarative __table__ is typed as a FromClause; these are Tables.
GENERATION = cast(Table, Generation.__table__)
AREA = cast(Table, Area.__table__)
IMPORT_BATCH = cast(Table, ImportBatch.__table__)


# -- generations ---------------------------------------------------------------------
_GEN_COLUMNS = [
    Generation.__table__.c[name]
    for name in ("id", "label", "is_active", "created_at", "activated_at", "note")
]


def generation_columns() -> list:
    """The columns of :class:`GenerationInfo`, for queries joining ``generation``."""
    return list(_GEN_COLUMNS)


def active_generation(conn: Connection) -> GenerationInfo | None:
    row = conn.execute(select(*_GEN_COLUMNS).where(Generation.is_active)).first()
    return generation_from_row(row) if row else None


def get_generation(conn: Connection, ref: str | int) -> GenerationInfo | None:
    """A generation by id (an int or digits) or by label."""
    query = select(*_GEN_COLUMNS).where(Generation.label == str(ref))
    row = conn.execute(query).first()
    if row is None and str(ref).isascii() and str(ref).isdigit():
        row = conn.execute(select(*_GEN_COLUMNS).where(Generation.id == int(ref))).first()
    return generation_from_row(row) if row else None


def list_generations(conn: Connection) -> list[GenerationInfo]:
    return [
        generation_from_row(r) for r in conn.execute(select(*_GEN_COLUMNS).order_by(Generation.id))
    ]


def create_generation(
    conn: Connection, label: str, note: str | None = None, activate: bool = False
) -> GenerationInfo:
    gen_id = conn.execute(
        GENERATION.insert().values(label=label, note=note).returning(Generation.id)
    ).scalar_one()
    if activate:
        activate_generation(conn, gen_id)
    generation = get_generation(conn, gen_id)
    assert generation is not None
    return generation


def resolve_generation(conn: Connection, ref: str | None) -> tuple[GenerationInfo, bool]:
    """The generation named ``ref`` (created, inactive, if new), or the active one.

    With no generation at all the first one is created *and activated*: a fresh
    database has to start somewhere. Returns (generation, created).
    """
    if ref is not None:
        found = get_generation(conn, ref)
        if found:
            return found, False
        first = conn.execute(select(func.count()).select_from(Generation)).scalar_one() == 0
        return create_generation(conn, str(ref), activate=first), True
    active = active_generation(conn)
    if active:
        return active, False
    return create_generation(conn, "initial", note="first boundary set", activate=True), True


def activate_generation(conn: Connection, generation_id: int) -> None:
    """Make ``generation_id`` the only active generation (within the caller's transaction)."""
    conn.execute(update(Generation).where(Generation.is_active).values(is_active=False))
    conn.execute(
        update(Generation)
        .where(Generation.id == generation_id)
        .values(is_active=True, activated_at=func.now())
    )


def generation_from_row(row: Row) -> GenerationInfo:
    return GenerationInfo(**{c.name: row._mapping[c.name] for c in _GEN_COLUMNS})


# -- areas ---------------------------------------------------------------------------
#: An area's attributes (everything but its geometry), as stored and served.
AREA_PROPERTIES: tuple[str, ...] = tuple(c for c in AREA_COLUMNS if c != "geometry")


def areas_frame(
    conn: Connection,
    generation_id: int,
    level: str | None = None,
    columns: Sequence[str] = AREA_PROPERTIES,
) -> gpd.GeoDataFrame:
    """Areas of one generation (optionally one level) as a GeoDataFrame in EPSG:4326."""
    table = AREA
    query = (
        select(*[table.c[c] for c in columns], func.ST_AsBinary(table.c.geom).label("wkb"))
        .where(table.c.generation_low <= generation_id, table.c.generation_high >= generation_id)
        .order_by(table.c.code)
    )
    if level is not None:
        query = query.where(table.c.level == level)
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[*columns, "wkb"])
    geometry = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy()) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)


def area_codes(conn: Connection, generation_id: int, level: str | None = None) -> set[str]:
    query = select(Area.code).where(
        Area.generation_low <= generation_id, Area.generation_high >= generation_id
    )
    if level is not None:
        query = query.where(Area.level == level)
    return set(conn.execute(query).scalars())


def delete_level(conn: Connection, generation_id: int, level: str) -> int:
    """Remove a level from a generation: rows only in it go, longer-lived rows are cut short.

    Rows that later generations share with this one (MapIt-style ranges, e.g. the
    streets a redesign plan carried over) are split first, so replacing this
    generation's level leaves every later generation's areas exactly as they were.
    """
    table = AREA
    _split_after(conn, generation_id, level)
    only_here = conn.execute(
        table.delete().where(
            table.c.level == level,
            table.c.generation_low == generation_id,
            table.c.generation_high == generation_id,
        )
    ).rowcount
    cut_end = conn.execute(
        table.update()
        .where(
            table.c.level == level,
            table.c.generation_low < generation_id,
            table.c.generation_high == generation_id,
        )
        .values(generation_high=generation_id - 1)
    ).rowcount
    return only_here + cut_end


#: Columns an area row carries besides its id and generation range.
_AREA_BODY = (
    "level, kind, code, name, parent_code, population, households, responsible, area_m2, "
    "geom, batch_id"
)


def _split_after(conn: Connection, generation_id: int, level: str) -> int:
    """Give the later generations their own copy of rows they share with ``generation_id``."""
    spanning = conn.execute(
        select(AREA.c.id, AREA.c.generation_high).where(
            AREA.c.level == level,
            AREA.c.generation_low <= generation_id,
            AREA.c.generation_high > generation_id,
        )
    ).all()
    by_end: dict[int, list[int]] = {}
    for area_id, high in spanning:
        by_end.setdefault(high, []).append(area_id)
    for high, ids in by_end.items():
        # Cut first: the copy's range [g+1, high] would overlap the original's otherwise,
        # which the per-generation unique-code exclusion constraint refuses.
        conn.execute(update(AREA).where(AREA.c.id.in_(ids)).values(generation_high=generation_id))
        conn.execute(
            text(
                f"INSERT INTO area ({_AREA_BODY}, generation_low, generation_high) "
                f"SELECT {_AREA_BODY}, :low, :high FROM area WHERE id = ANY(:ids)"
            ),
            {"low": generation_id + 1, "high": high, "ids": ids},
        )
    return len(spanning)


def copy_areas(
    conn: Connection, areas: gpd.GeoDataFrame, generation_id: int, batch_id: int | None
) -> int:
    """COPY prepared areas (columns of gis.areas.AREA_COLUMNS) into one generation."""
    if len(areas) == 0:
        return 0
    geoms = np.array(
        [
            shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g
            for g in areas.geometry.to_numpy()
        ],
        dtype=object,
    )  # column is MULTI
    rows = pd.DataFrame(
        {
            "level": areas["level"].to_numpy(),
            "kind": areas["kind"].to_numpy(),
            "code": areas["code"].to_numpy(),
            "name": areas["name"].to_numpy(),
            "parent_code": areas["parent_code"].to_numpy(),
            "generation_low": generation_id,
            "generation_high": generation_id,
            "population": _int_column(areas, "population"),
            "households": _int_column(areas, "households"),
            "responsible": areas["responsible"].to_numpy(),
            "area_m2": areas["area_m2"].to_numpy(dtype=float),
            "geom": shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True),
            "batch_id": pd.array([batch_id] * len(areas), dtype="Int64"),
        }
    )
    return copy_frame(conn, "area", rows)


def _int_column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series([None] * len(frame), dtype="Int64")
    return (
        pd.to_numeric(frame[column], errors="coerce").round().astype("Int64").reset_index(drop=True)
    )


# -- import batches ------------------------------------------------------------------
def start_batch(
    conn: Connection,
    kind: str,
    source: str | None,
    level: str | None = None,
    generation_id: int | None = None,
    file_sha256: str | None = None,
    rows_in: int = 0,
) -> int:
    return conn.execute(
        IMPORT_BATCH.insert()
        .values(
            kind=kind,
            source=source,
            level=level,
            generation_id=generation_id,
            file_sha256=file_sha256,
            status="running",
            rows_in=rows_in,
        )
        .returning(ImportBatch.id)
    ).scalar_one()


def record_refusal(
    conn: Connection,
    kind: str,
    source: str | None,
    problems: Sequence[dict],
    *,
    rows_in: int,
    level: str | None = None,
    generation_id: int | None = None,
    file_sha256: str | None = None,
    report: dict | None = None,
) -> int:
    """Keep a refused file as a ``rejected`` batch with one rejected row per problem.

    Nothing of the file is stored, but the refusal and its reasons are: an import
    never loses a row silently, even one it refuses whole.
    """
    batch = start_batch(conn, kind, source, level, generation_id, file_sha256, rows_in)
    add_rejected_rows(conn, batch, problems)
    finish_batch(
        conn,
        batch,
        "rejected",
        rejected=rows_in,
        report={"problems": len(problems), **(report or {})},
    )
    return batch


def finish_batch(
    conn: Connection,
    batch_id: int,
    status: str,
    *,
    stored: int = 0,
    rejected: int = 0,
    unlocated: int = 0,
    report: dict | None = None,
) -> None:
    conn.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id)
        .values(
            status=status,
            finished_at=func.now(),
            rows_stored=stored,
            rows_rejected=rejected,
            rows_unlocated=unlocated,
            report=report,
        )
    )


def add_rejected_rows(conn: Connection, batch_id: int, problems: Sequence[dict]) -> int:
    """Keep every rejected row with its reason (COPY: a bad file can have many)."""
    rows = (
        (
            batch_id,
            p.get("row"),
            p["reason"],
            json.dumps(
                p.get("raw", {k: v for k, v in p.items() if k not in ("row", "reason")}),
                ensure_ascii=False,
                default=str,
            ),
        )
        for p in problems
    )
    return copy_rows(conn, "rejected_row", ("batch_id", "row_number", "reason", "raw"), rows)


def rejected_rows(conn: Connection, batch_id: int) -> list[dict]:
    query = (
        select(RejectedRow.row_number, RejectedRow.reason, RejectedRow.raw)
        .where(RejectedRow.batch_id == batch_id)
        .order_by(RejectedRow.id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def counts_by_level(conn: Connection, generation_id: int) -> dict[str, int]:
    rows = conn.execute(
        text(
            "SELECT level, count(*) FROM area WHERE generation_low <= :g AND generation_high >= :g "
            "GROUP BY level"
        ),
        {"g": generation_id},
    )
    return {level: n for level, n in rows}


# -- incidents and the gazetteer ------------------------------------------------------
#: The view ``incident_current`` (migration 0001): incidents with their assignment under
#: the active generation.
INCIDENT_CURRENT = sql_table(
    "incident_current", *[sql_column(c) for c in (*INCIDENT_EXPORT_COLUMNS, "location")]
)


def incidents_frame(conn: Connection, sources: Sequence[str] = ()) -> gpd.GeoDataFrame:
    """Incidents (of ``sources``, default all) with their current assignment, by id."""
    view = INCIDENT_CURRENT
    query = select(
        *[view.c[c] for c in INCIDENT_EXPORT_COLUMNS],
        func.ST_X(view.c.location).label("lon"),
        func.ST_Y(view.c.location).label("lat"),
    ).order_by(view.c.id)
    if sources:
        query = query.where(view.c.source.in_(list(sources)))
    rows = conn.execute(query).mappings().all()
    frame = pd.DataFrame(rows, columns=[*INCIDENT_EXPORT_COLUMNS, "lon", "lat"])
    lon = frame["lon"].astype(float).to_numpy()
    lat = frame["lat"].astype(float).to_numpy()
    geometry = shapely.points(lon, lat)
    geometry[np.isnan(lon)] = None
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)


def store_gazetteer(
    conn: Connection, frame: pd.DataFrame, source: str, replace: bool = False
) -> int:
    """COPY gazetteer addresses (address, lon, lat[, micro_grid_code]) into address_point."""
    if replace:
        conn.execute(text("TRUNCATE address_point"))
    lon = frame["lon"].astype(float).to_numpy()
    lat = frame["lat"].astype(float).to_numpy()
    ewkb = shapely.to_wkb(
        shapely.set_srid(shapely.points(lon, lat), 4326), hex=True, include_srid=True
    )
    codes = frame["micro_grid_code"] if "micro_grid_code" in frame else [None] * len(frame)
    rows = zip(frame["address"], lon, lat, codes, [source] * len(frame), ewkb, strict=True)
    return copy_rows(
        conn, "address_point", ("address", "lon", "lat", "micro_grid_code", "source", "geom"), rows
    )


def carry_areas(
    conn: Connection, from_generation: int, to_generation: int, levels: Sequence[str]
) -> int:
    """Make the areas of ``levels`` in ``from_generation`` part of ``to_generation`` too.

    MapIt's way: a row whose range ends just before ``to_generation`` is
    extended; otherwise (another generation came in between) it is copied with
    the range [to, to]. Unchanged areas thus keep their row and id.
    """
    table = AREA
    extended = conn.execute(
        table.update()
        .where(
            table.c.level.in_(levels),
            table.c.generation_low <= from_generation,
            table.c.generation_high >= from_generation,
            table.c.generation_high == to_generation - 1,
        )
        .values(generation_high=to_generation)
    ).rowcount
    copied = conn.execute(
        text(
            f"INSERT INTO area ({_AREA_BODY}, generation_low, generation_high) "
            f"SELECT {_AREA_BODY}, :to, :to FROM area WHERE level = ANY(:levels) "
            "AND generation_low <= :from AND generation_high >= :from "
            "AND generation_high < :to"
        ),
        {"to": to_generation, "from": from_generation, "levels": list(levels)},
    ).rowcount
    return extended + copied
