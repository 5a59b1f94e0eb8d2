"""Incident import: clean, geocode, assign and store one batch, all or nothing.

Every input row ends in exactly one of three places, and the counts add up to
the input: stored with a location, stored as ``unlocated`` with the reason, or
kept in ``rejected_row`` with the reason. Re-importing a file changes nothing:
``(source, external_id)`` is unique and conflicts are skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from app.db import repo
from app.services.assignment import CODE_COLUMNS, load_hierarchy, write_assignments
from gis.geocode import Gazetteer
from gis.hierarchy import HierarchyIndex
from gis.incidents import FieldMap, clean_incidents, read_incident_file
from gis.taxonomy import load_taxonomy

INCIDENT_COPY_COLUMNS = (
    "source",
    "external_id",
    "category",
    "description",
    "address",
    "reported_at",
    "raw_lon",
    "raw_lat",
    "raw_crs",
    "location",
    "location_status",
    "unlocated_reason",
    "batch_id",
)


@dataclass
class IncidentImportReport:
    """Counts of one import; ``stored + unlocated + rejected == rows_in``."""

    source: str
    rows_in: int
    stored: int = 0
    unlocated: int = 0
    rejected: int = 0
    already_present: int = 0
    geocoded: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    batch_id: int | None = None
    rejected_rows: list[dict] = field(default_factory=list)
    unlocated_reasons: dict[str, int] = field(default_factory=dict)


def import_incident_file(
    engine: Engine,
    path: str | Path,
    *,
    fields: FieldMap | None = None,
    source: str | None = None,
    crs: str | None = None,
    encoding: str = "utf-8",
    tolerance: float = 0.0,
) -> IncidentImportReport:
    """Read a CSV / GeoJSON / Open311 file and import it as one batch."""
    path = Path(path)
    raw, fmt = read_incident_file(path, encoding=encoding)
    if fmt != "csv" and fields is None:
        fields = FieldMap()  # GeoJSON and Open311 rows are already mapped to gridmap names
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return import_incidents(
        engine,
        raw,
        label=str(path),
        fields=fields,
        source=source,
        crs=crs,
        tolerance=tolerance,
        file_sha256=digest,
    )


def import_incidents(
    engine: Engine,
    raw: pd.DataFrame,
    *,
    label: str,
    fields: FieldMap | None = None,
    source: str | None = None,
    crs: str | None = None,
    tolerance: float = 0.0,
    file_sha256: str | None = None,
    index: HierarchyIndex | None = None,
) -> IncidentImportReport:
    """Import rows given as text columns (see :func:`gis.incidents.clean_incidents`)."""
    with engine.begin() as conn:
        gen = repo.active_generation(conn)
        if gen is not None and index is None:
            index = load_hierarchy(conn, gen.id)
        bounds = _jurisdiction_bounds(index)
        cleaned = clean_incidents(
            raw,
            fields=fields,
            source=source,
            crs=crs,
            categories=load_taxonomy(),
            expected_bounds=bounds,
        )
        frame = cleaned.frame
        geocoded = _geocode(conn, frame)
        _assign(frame, index, tolerance, gen.id if gen else None)
        batch = repo.start_batch(
            conn,
            "incidents",
            label,
            generation_id=gen.id if gen else None,
            file_sha256=file_sha256,
            rows_in=cleaned.rows_in,
        )
        new = _store(conn, frame, batch)
        repo.add_rejected_rows(conn, batch, cleaned.rejected)
        report = _report(label, cleaned, frame, new, geocoded, batch)
        repo.finish_batch(
            conn,
            batch,
            "loaded",
            stored=report.stored,
            rejected=report.rejected,
            unlocated=report.unlocated,
            report={
                "already_present": report.already_present,
                "by_status": report.by_status,
                "unlocated_reasons": report.unlocated_reasons,
            },
        )
    return report


def _jurisdiction_bounds(index: HierarchyIndex | None):
    if index is None:
        return None
    minx, miny, maxx, maxy = index.bounds
    pad = 0.5  # degrees: generous, only to tell swapped lat/lon from a far-away point
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def _geocode(conn: Connection, frame: pd.DataFrame) -> int:
    todo = np.flatnonzero(frame["location_status"].to_numpy() == "to_geocode")
    if len(todo) == 0:
        return 0
    gazetteer_rows = (
        conn.execute(text("SELECT address, lon, lat, micro_grid_code FROM address_point"))
        .mappings()
        .all()
    )
    if not gazetteer_rows:
        frame.loc[todo, "location_status"] = "unlocated"
        frame.loc[todo, "unlocated_reason"] = "address only, and no gazetteer is loaded"
        return 0
    gazetteer = Gazetteer(pd.DataFrame(gazetteer_rows))
    found = gazetteer.geocode(frame.loc[todo, "address"].tolist())
    ok = found["lon"].notna().to_numpy()
    frame.loc[todo[ok], "lon"] = found["lon"].to_numpy()[ok]
    frame.loc[todo[ok], "lat"] = found["lat"].to_numpy()[ok]
    frame.loc[todo[ok], "location_status"] = "geocoded"
    frame.loc[todo[~ok], "location_status"] = "unlocated"
    frame.loc[todo[~ok], "unlocated_reason"] = found["reason"].to_numpy()[~ok]
    return int(ok.sum())


def _assign(
    frame: pd.DataFrame, index: HierarchyIndex | None, tolerance: float, generation_id: int | None
) -> None:
    for column in (*CODE_COLUMNS, "assign_status"):
        frame[column] = None
    frame["distance_m"] = np.nan
    frame["generation_id"] = None
    located = frame["location_status"].isin(["located", "geocoded"]).to_numpy()
    if index is None or not located.any():
        return
    result = index.assign_xy(
        frame.loc[located, "lon"].to_numpy(),
        frame.loc[located, "lat"].to_numpy(),
        tolerance=tolerance,
    )
    for column in (*CODE_COLUMNS, "assign_status", "distance_m"):
        frame.loc[located, column] = result[column].to_numpy()
    frame.loc[located, "generation_id"] = generation_id


def _store(conn: Connection, frame: pd.DataFrame, batch_id: int) -> set[tuple[str, str]]:
    """COPY into a staging table, insert what is new, then its assignments.

    Returns the (source, external_id) pairs that were new.
    """
    conn.execute(
        text("CREATE TEMP TABLE incident_stage (LIKE incident INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    located = frame["location_status"].isin(["located", "geocoded"]).to_numpy()
    points = np.where(
        located,
        shapely.to_wkb(
            shapely.set_srid(shapely.points(frame["lon"].fillna(0), frame["lat"].fillna(0)), 4326),
            hex=True,
            include_srid=True,
        ),
        None,
    )
    stage = frame[
        [
            "source",
            "external_id",
            "category",
            "description",
            "address",
            "reported_at",
            "raw_lon",
            "raw_lat",
            "raw_crs",
        ]
    ].copy()
    stage["reported_at"] = stage["reported_at"].map(
        lambda t: None if t is None or pd.isna(t) else t.isoformat()
    )
    stage["location"] = points
    stage["location_status"] = frame["location_status"]
    stage["unlocated_reason"] = frame["unlocated_reason"]
    stage["batch_id"] = batch_id
    repo.copy_frame(conn, "incident_stage", stage[list(INCIDENT_COPY_COLUMNS)])
    columns = ", ".join(INCIDENT_COPY_COLUMNS)
    inserted = conn.execute(
        text(
            f"INSERT INTO incident ({columns}) SELECT {columns} FROM incident_stage "
            "ORDER BY external_id ON CONFLICT (source, external_id) DO NOTHING "
            "RETURNING id, source, external_id"
        )
    ).all()
    conn.execute(text("DROP TABLE incident_stage"))
    new_ids = {(s, e): i for i, s, e in inserted}
    _store_assignments(conn, frame, new_ids)
    return set(new_ids)


def _store_assignments(
    conn: Connection, frame: pd.DataFrame, new_ids: dict[tuple[str, str], int]
) -> None:
    """Assignments of the incidents just inserted (re-imported ones keep theirs)."""
    ids = np.array(
        [
            new_ids.get((s, e), -1)
            for s, e in zip(frame["source"], frame["external_id"], strict=True)
        ],
        dtype=np.int64,
    )
    todo = (ids >= 0) & frame["assign_status"].notna().to_numpy()
    if not todo.any():
        return
    generation_id = int(frame.loc[todo, "generation_id"].iloc[0])
    write_assignments(conn, ids[todo], frame.loc[todo].reset_index(drop=True), generation_id)


def _report(label, cleaned, frame, new, geocoded, batch) -> IncidentImportReport:
    unlocated = frame["location_status"] == "unlocated"
    report = IncidentImportReport(
        source=label,
        rows_in=cleaned.rows_in,
        stored=int((~unlocated).sum()),
        unlocated=int(unlocated.sum()),
        rejected=len(cleaned.rejected),
        already_present=len(frame) - len(new),
        geocoded=geocoded,
        batch_id=batch,
        rejected_rows=cleaned.rejected,
        by_status={str(k): int(v) for k, v in frame["assign_status"].value_counts().items()},
        unlocated_reasons={
            str(k): int(v)
            for k, v in frame.loc[unlocated, "unlocated_reason"].value_counts().items()
        },
    )
    return report
