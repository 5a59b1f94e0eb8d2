"""Incidents in: clean, locate, assign and store a batch, all or nothing.

One pipeline for every way in: a file import is a batch of thousands, an
incident created through the API (``app.services.incidents``) a batch of one.
Every input row ends in exactly one of three places, and the counts add up to
the input: stored with a location, stored as ``unlocated`` with the reason, or
kept in ``rejected_row`` with the reason. Storing a row again changes nothing:
``(source, external_id)`` is unique and conflicts are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine

from app.db import assignments, bulk, repo
from app.db import incidents as incident_rows
from app.db import taxonomy as taxonomy_rows
from app.db.assignments import CODE_COLUMNS
from app.services.assignment import load_hierarchy
from app.services.index_store import IndexStore
from app.services.taxonomy import current_taxonomy
from gis.assign import HierarchyIndex
from gis.geocode import Gazetteer
from gis.incidents import (
    STEP_COLUMNS,
    CleanIncidents,
    FieldMap,
    clean_incidents,
    read_incident_file,
)
from gis.tables import TableSource
from gis.taxonomy import read_category_map
from gis.vocabulary import LOCATION_STATUSES

#: Called only when a row needs geocoding: the gazetteer, or None when none is loaded.
GazetteerSource = Callable[[], Gazetteer | None]
#: Degrees around the jurisdiction: generous, only to tell swapped lat/lon from a far-away
#: point.
_BOUNDS_PAD_DEG = 0.5
#: The steps ``ImportProgress`` reports, in order: rows read from the file, cleaned
#: (located and assigned too), and stored.
IMPORT_STEPS = ("read", "cleaned", "stored")
#: ``progress(step, rows done, rows in all)`` for one of :data:`IMPORT_STEPS`.
ImportProgress = Callable[[str, int, int], None]
_LOCATED = tuple(s for s in LOCATION_STATUSES if s != "unlocated")


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
    #: Stored without a category (``--unknown-category keep``), by the value the file gave.
    uncategorised: dict[str, int] = field(default_factory=dict)
    #: Stored rows by closed-loop status (all ``reported`` unless the file has a history).
    by_loop_status: dict[str, int] = field(default_factory=dict)
    taxonomy_version: int | None = None
    #: What was read: the file's encoding or sheet, and the category map's.
    read: TableSource | None = None
    category_map_read: TableSource | None = None

    @property
    def uncategorised_count(self) -> int:
        return sum(self.uncategorised.values())


def import_incident_file(
    engine: Engine,
    path: str | Path,
    *,
    fields: FieldMap | None = None,
    source: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
    tolerance: float = 0.0,
    category_map: str | Path | None = None,
    category_map_sheet: str | int | None = None,
    unknown_category: str = "reject",
    indexes: IndexStore | None = None,
    progress: ImportProgress | None = None,
) -> IncidentImportReport:
    """Read a CSV / XLSX / GeoJSON / Open311 file and import it as one batch.

    ``encoding`` (text files) is detected when not given; ``category_map`` is a
    ``source_value,code`` table translating the file's own categories (CSV or XLSX, its
    encoding detected on its own: the map is often made on another machine than the export).
    """
    path = Path(path)
    raw, fmt, read = read_incident_file(path, encoding=encoding, sheet=sheet)
    if progress is not None:
        progress("read", len(raw), len(raw))
    if fmt in ("geojson", "open311") and fields is None:
        fields = FieldMap()  # GeoJSON and Open311 rows are already mapped to gridmap names
    mapping, map_read = None, None
    if category_map is not None:
        with engine.connect() as conn:
            _, taxonomy = current_taxonomy(conn)
        mapping, map_read = read_category_map(category_map, taxonomy, sheet=category_map_sheet)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    report = import_incidents(
        engine,
        raw,
        label=str(path),
        fields=fields,
        source=source,
        crs=crs,
        tolerance=tolerance,
        file_sha256=digest,
        category_map=mapping,
        unknown_category=unknown_category,
        indexes=indexes,
        progress=progress,
    )
    report.read, report.category_map_read = read, map_read
    return report


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
    category_map: dict[str, str] | None = None,
    unknown_category: str = "reject",
    indexes: IndexStore | None = None,
    progress: ImportProgress | None = None,
) -> IncidentImportReport:
    """Import rows given as text columns (see :func:`gis.incidents.clean_incidents`).

    Categories are checked against the stored taxonomy in use; rows without a
    known category are rejected (``unknown_category="reject"``, the default of
    callers that create incidents one by one) or kept uncategorised and counted
    in the report (``"keep"``, the default of ``gridmap incidents import``).
    """
    with engine.begin() as conn:
        gen = repo.active_generation(conn)
        if gen is not None and index is None:
            index = load_hierarchy(conn, gen.id, indexes)
        _, taxonomy = current_taxonomy(conn)
        prepared = prepare_batch(
            raw,
            fields=fields,
            source=source,
            crs=crs,
            categories=taxonomy,
            index=index,
            generation_id=gen.id if gen else None,
            tolerance=tolerance,
            gazetteer=lambda: stored_gazetteer(conn),
            category_map=category_map,
            unknown_category=unknown_category,
        )
        cleaned, frame = prepared.cleaned, prepared.cleaned.frame
        if progress is not None:
            progress("cleaned", len(raw), len(raw))
        batch = repo.start_batch(
            conn,
            "incidents",
            label,
            generation_id=gen.id if gen else None,
            file_sha256=file_sha256,
            rows_in=cleaned.rows_in,
        )
        stored = None if progress is None else (lambda n: progress("stored", n, len(frame)))
        new = store_batch(conn, frame, batch, stored)
        if progress is not None:
            progress("stored", len(frame), len(frame))
        repo.add_rejected_rows(conn, batch, cleaned.rejected)
        version = taxonomy_rows.current_version_id(conn)
        report = _report(label, cleaned, new, prepared.geocoded, batch, version)
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
                "uncategorised": report.uncategorised,
                "by_loop_status": report.by_loop_status,
                "taxonomy_version": report.taxonomy_version,
            },
        )
    return report


# -- the pipeline ------------------------------------------------------------------------
@dataclass
class PreparedBatch:
    """Cleaned rows, located and assigned, ready to store; ``geocoded`` rows found by address."""

    cleaned: CleanIncidents
    geocoded: int


def prepare_batch(
    raw: pd.DataFrame,
    *,
    fields: FieldMap | None,
    source: str | None,
    crs: str | None,
    categories: pd.DataFrame,
    index: HierarchyIndex | None,
    generation_id: int | None,
    tolerance: float,
    gazetteer: GazetteerSource,
    category_map: dict[str, str] | None = None,
    unknown_category: str = "reject",
) -> PreparedBatch:
    """Clean, locate and assign rows in memory (nothing is written).

    ``unknown_category`` defaults to ``reject``: one incident through the API must
    name a category of the taxonomy; file imports choose (see :func:`import_incidents`).
    """
    cleaned = clean_incidents(
        raw,
        fields=fields,
        source=source,
        crs=crs,
        categories=categories,
        expected_bounds=jurisdiction_bounds(index),
        category_map=category_map,
        unknown_category=unknown_category,
    )
    geocoded = locate(cleaned.frame, gazetteer)
    assign(cleaned.frame, index, tolerance, generation_id)
    return PreparedBatch(cleaned, geocoded)


def jurisdiction_bounds(
    index: HierarchyIndex | None,
) -> tuple[float, float, float, float] | None:
    if index is None:
        return None
    minx, miny, maxx, maxy = index.bounds
    pad = _BOUNDS_PAD_DEG
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def stored_gazetteer(conn: Connection) -> Gazetteer | None:
    """The gazetteer of ``address_point``, None when it is empty."""
    entries = incident_rows.gazetteer_frame(conn)
    return Gazetteer(entries) if len(entries) else None


def locate(frame: pd.DataFrame, gazetteer: GazetteerSource) -> int:
    """Geocode the rows with an address but no coordinates; returns how many were found."""
    todo = np.flatnonzero(frame["location_status"].to_numpy() == "to_geocode")
    if len(todo) == 0:
        return 0
    found_in = gazetteer()
    if found_in is None:
        frame.loc[todo, "location_status"] = "unlocated"
        frame.loc[todo, "unlocated_reason"] = "address only, and no gazetteer is loaded"
        return 0
    found = found_in.geocode(frame.loc[todo, "address"].tolist())
    ok = found["lon"].notna().to_numpy()
    frame.loc[todo[ok], "lon"] = found["lon"].to_numpy()[ok]
    frame.loc[todo[ok], "lat"] = found["lat"].to_numpy()[ok]
    frame.loc[todo[ok], "location_status"] = "geocoded"
    frame.loc[todo[~ok], "location_status"] = "unlocated"
    frame.loc[todo[~ok], "unlocated_reason"] = found["reason"].to_numpy()[~ok]
    return int(ok.sum())


def assign(
    frame: pd.DataFrame, index: HierarchyIndex | None, tolerance: float, generation_id: int | None
) -> None:
    """Add the assignment columns; rows without a location (or no index) stay unassigned."""
    for column in (*CODE_COLUMNS, "assign_status"):
        frame[column] = None
    frame["distance_m"] = np.nan
    frame["generation_id"] = None
    located = frame["location_status"].isin(_LOCATED).to_numpy()
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


def store_batch(
    conn: Connection,
    frame: pd.DataFrame,
    batch_id: int | None,
    progress: Callable[[int], None] | None = None,
) -> dict[tuple[str, str], int]:
    """Insert what is new, then its assignments; returns (source, external_id) → id of those.

    Categorised rows record the taxonomy version in use: codes mean what that version says.
    ``progress(rows)``: the rows sent to the database so far.
    """
    version = taxonomy_rows.current_version_id(conn)
    with bulk.deferred_indexes(conn, ("incident", "incident_assignment"), len(frame)):
        rows = _incident_rows(frame, batch_id, version)
        inserted = incident_rows.insert_new_incidents(conn, rows, progress)
        new_ids = {(s, e): i for i, s, e in inserted}
        _store_assignments(conn, frame, new_ids)
    return new_ids


def _incident_rows(frame: pd.DataFrame, batch_id: int | None, version: int | None) -> pd.DataFrame:
    """The columns of ``incident`` a batch fills, points as EWKB (binary COPY's input)."""
    located = frame["location_status"].isin(_LOCATED).to_numpy()
    points = shapely.set_srid(shapely.points(frame["lon"].fillna(0), frame["lat"].fillna(0)), 4326)
    rows = frame[[c for c in incident_rows.INCIDENT_COPY_COLUMNS if c in frame]].copy()
    for column in ("reported_at", *STEP_COLUMNS):
        rows[column] = _instants(rows[column])
    categorised = rows["category"].notna().to_numpy()
    rows["taxonomy_version"] = pd.array(
        [version if c else None for c in categorised], dtype="Int64"
    )
    rows["location"] = np.where(located, shapely.to_wkb(points, include_srid=True), None)
    rows["batch_id"] = pd.array([batch_id] * len(frame), dtype="Int64")
    return rows[list(incident_rows.INCIDENT_COPY_COLUMNS)]


def _instants(values: pd.Series) -> pd.Series:
    """Aware timestamps (or None) as one UTC datetime column: binary COPY writes them as is."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    try:
        return pd.to_datetime(values, utc=True)
    except (TypeError, ValueError):  # pragma: no cover - cleaned rows hold Timestamps or None
        return values.map(_iso)


def _iso(moment) -> str | None:
    return None if moment is None or pd.isna(moment) else moment.isoformat()


def _store_assignments(
    conn: Connection, frame: pd.DataFrame, new_ids: dict[tuple[str, str], int]
) -> None:
    """Assignments of the incidents just inserted (ones stored before keep theirs)."""
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
    assignments.copy_assignments(
        conn, ids[todo], frame.loc[todo].reset_index(drop=True), generation_id
    )


def _report(
    label: str,
    cleaned: CleanIncidents,
    new: dict[tuple[str, str], int],
    geocoded: int,
    batch: int,
    taxonomy_version: int | None,
) -> IncidentImportReport:
    frame = cleaned.frame
    unlocated = frame["location_status"] == "unlocated"
    return IncidentImportReport(
        source=label,
        rows_in=cleaned.rows_in,
        stored=int((~unlocated).sum()),
        unlocated=int(unlocated.sum()),
        rejected=len(cleaned.rejected),
        already_present=len(frame) - len(new),
        geocoded=geocoded,
        batch_id=batch,
        rejected_rows=cleaned.rejected,
        uncategorised=cleaned.uncategorised,
        by_loop_status={str(k): int(v) for k, v in frame["status"].value_counts().items()},
        taxonomy_version=taxonomy_version,
        by_status={str(k): int(v) for k, v in frame["assign_status"].value_counts().items()},
        unlocated_reasons={
            str(k): int(v)
            for k, v in frame.loc[unlocated, "unlocated_reason"].value_counts().items()
        },
    )
