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
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, update

from app.db import assignments, bulk, incident_load, repo
from app.db import incidents as incident_rows
from app.db import taxonomy as taxonomy_rows
from app.db.assignments import CODE_COLUMNS
from app.db.models import ImportBatch
from app.services.assignment import load_hierarchy
from app.services.index_store import IndexStore
from app.services.taxonomy import current_taxonomy
from gis.assign import HierarchyIndex
from gis.geocode import Gazetteer
from gis.incident_stream import (
    DEFAULT_CHUNK_ROWS,
    CsvChunks,
    IdLedger,
    duplicate_reason,
    is_streamable,
)
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
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> IncidentImportReport:
    """Read a CSV / XLSX / GeoJSON / Open311 file and import it as one batch.

    ``encoding`` (text files) is detected when not given; ``category_map`` is a
    ``source_value,code`` table translating the file's own categories (CSV or XLSX, its
    encoding detected on its own: the map is often made on another machine than the export).
    A CSV is read, cleaned and stored ``chunk_rows`` rows at a time (memory bounded by
    the chunk, not the file) in one transaction: the batch is still all or nothing.
    """
    path = Path(path)
    chunks: Iterable[tuple[int, pd.DataFrame]]
    if is_streamable(path):
        stream = CsvChunks(path, encoding=encoding, chunk_rows=chunk_rows)
        chunks, read, digest, rows_hint = stream, stream.source, stream.sha256, stream.rows_hint
    else:
        raw, fmt, read = read_incident_file(path, encoding=encoding, sheet=sheet)
        if fmt in ("geojson", "open311") and fields is None:
            fields = FieldMap()  # GeoJSON and Open311 rows are already mapped to gridmap names
        chunks, digest, rows_hint = [(0, raw)], _file_sha256(path), len(raw)
    mapping, map_read = None, None
    if category_map is not None:
        with engine.connect() as conn:
            _, taxonomy = current_taxonomy(conn)
        mapping, map_read = read_category_map(category_map, taxonomy, sheet=category_map_sheet)
    report = import_chunks(
        engine,
        chunks,
        rows_hint=rows_hint,
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


def _rows_stored(tell: ImportProgress, before: int, total: int) -> Callable[[int], None]:
    """``store_rows``' progress as the file's: rows of the chunk sent, after ``before``."""
    return lambda sent: tell("stored", before + sent, total)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


class ImportOptions(TypedDict, total=False):
    """The keyword options of :func:`import_chunks`, which :func:`import_incidents` passes on."""

    fields: FieldMap | None
    source: str | None
    crs: str | None
    tolerance: float
    file_sha256: str | None
    index: HierarchyIndex | None
    category_map: dict[str, str] | None
    unknown_category: str
    indexes: IndexStore | None
    progress: ImportProgress | None
    before_insert: incident_load.StageStep | None


def import_incidents(
    engine: Engine, raw: pd.DataFrame, *, label: str, **options: Unpack[ImportOptions]
) -> IncidentImportReport:
    """Import rows given as text columns (see :func:`gis.incidents.clean_incidents`).

    Categories are checked against the stored taxonomy in use; rows without a
    known category are rejected (``unknown_category="reject"``, the default of
    callers that create incidents one by one) or kept uncategorised and counted
    in the report (``"keep"``, the default of ``gridmap incidents import``).
    ``before_insert`` runs on each chunk's staged rows (see :func:`import_chunks`).
    """
    return import_chunks(engine, [(0, raw)], rows_hint=len(raw), label=label, **options)


def import_chunks(
    engine: Engine,
    chunks: Iterable[tuple[int, pd.DataFrame]],
    *,
    rows_hint: int,
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
    before_insert: incident_load.StageStep | None = None,
) -> IncidentImportReport:
    """Import a file's rows given as ``(offset of the first row, text columns)`` chunks.

    One transaction and one batch for all chunks: a failure anywhere stores
    nothing. Each chunk is cleaned, located, assigned and stored before the next
    is read; what depends on the whole file — a repeated id, a file without any
    source — is decided across chunks exactly as for the file read at once.
    ``rows_hint`` (the expected rows) sizes the progress bars and decides whether
    the tables' indexes are rebuilt once after the load (:func:`app.db.bulk.deferred_indexes`).
    ``before_insert(conn, stage)`` runs on each chunk's staging table before its rows
    are inserted, in the same transaction: what a caller adds to every row of its own
    batch (the demo names who handled each dispatched incident there).
    """
    fields = fields or FieldMap()
    tell = progress or (lambda step, done, total: None)
    with engine.begin() as conn:
        gen = repo.active_generation(conn)
        if gen is not None and index is None:
            index = load_hierarchy(conn, gen.id, indexes)
        _, taxonomy = current_taxonomy(conn)
        version = taxonomy_rows.current_version_id(conn)
        batch = repo.start_batch(
            conn,
            "incidents",
            label,
            generation_id=gen.id if gen else None,
            file_sha256=file_sha256,
            rows_in=rows_hint,
        )
        tally = _Tally(label, batch, version)
        ledger = IdLedger()
        gazetteer = _once(lambda: stored_gazetteer(conn))
        with bulk.deferred_indexes(conn, ("incident", "incident_assignment"), rows_hint):
            for offset, raw in chunks:
                total = max(rows_hint, offset + len(raw))
                tell("read", offset + len(raw), total)
                cleaned = clean_chunk(
                    raw,
                    offset,
                    ledger,
                    fields=fields,
                    source=source,
                    crs=crs,
                    categories=taxonomy,
                    expected_bounds=jurisdiction_bounds(index),
                    category_map=category_map,
                    unknown_category=unknown_category,
                )
                geocoded = locate(cleaned.frame, gazetteer)
                assign(cleaned.frame, index, tolerance, gen.id if gen else None)
                tell("cleaned", offset + len(raw), total)
                new = store_rows(
                    conn,
                    cleaned.frame,
                    batch,
                    version,
                    _rows_stored(tell, tally.kept, total),
                    before_insert,
                )
                repo.add_rejected_rows(conn, batch, cleaned.rejected)
                tally.add(cleaned, new, geocoded)
                tally.has_source = tally.has_source or _any_source(raw, fields)
        if source is None and tally.rows_in and not tally.has_source:
            _refuse_sourceless(fields)
        for step in IMPORT_STEPS:  # the bars end at their totals: rows in, rows stored
            done = tally.kept if step == "stored" else tally.rows_in
            tell(step, done, done)
        report = tally.report()
        _set_rows_in(conn, batch, report.rows_in)
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


#: The id of the stand-in row :func:`clean_chunk` adds to a chunk without any source;
#: no file gives it (a control character), and its row is removed from the result.
_STAND_IN_ID = "\x00gridmap-stand-in"
_STAND_IN_SOURCE = "gridmap_stand_in"


def clean_chunk(
    raw: pd.DataFrame,
    offset: int,
    ledger: IdLedger,
    *,
    fields: FieldMap,
    source: str | None,
    **options,
) -> CleanIncidents:
    """:func:`gis.incidents.clean_incidents` of rows ``offset…`` of a file, as the whole file.

    Row numbers are the file's CSV lines; an id seen in an earlier chunk (``ledger``)
    is refused as a duplicate of its first row there, before any other check but
    a missing id, as the whole-file cleaning orders them. A chunk whose rows have
    no source while the file has a source column is cleaned beside a stand-in row
    that has one: only a file without any source is refused (by the caller, at its end).
    """
    if fields.id not in raw.columns:  # the cleaning's own error, naming the columns
        return clean_incidents(raw, fields=fields, source=source, **options)
    lines = np.arange(offset + 2, offset + len(raw) + 2)  # CSV lines, the header is line 1
    ids = raw[fields.id].fillna("").astype(str).str.strip()
    first = ledger.first_rows(ids, lines)
    repeated = first >= 0
    duplicates = [
        {
            "row": int(lines[i]),
            "reason": duplicate_reason(ids.iat[i], int(first[i])),
            "raw": _raw_record(raw, int(i)),
        }
        for i in np.flatnonzero(repeated)
    ]
    rest = raw.loc[~repeated].reset_index(drop=True)
    kept_lines = lines[~repeated]
    stand_in = (
        source is None
        and len(rest) > 0
        and fields.source in rest.columns
        and not _any_source(rest, fields)
    )
    if stand_in:
        row = dict.fromkeys(rest.columns, "")
        row.update({fields.id: _STAND_IN_ID, str(fields.source): _STAND_IN_SOURCE})
        rest = pd.concat([rest, pd.DataFrame([row])], ignore_index=True)
    cleaned = clean_incidents(rest, fields=fields, source=source, **options)
    stand_in_row = len(kept_lines) + 2
    frame = cleaned.frame[cleaned.frame["row"] != stand_in_row].reset_index(drop=True)
    frame["row"] = kept_lines[frame["row"].to_numpy() - 2]
    rejected = [
        {**r, "row": int(kept_lines[r["row"] - 2])}
        for r in cleaned.rejected
        if r["row"] != stand_in_row
    ]
    if duplicates:
        rejected = sorted(rejected + duplicates, key=lambda r: r["row"])
    return CleanIncidents(frame, rejected, len(raw), cleaned.uncategorised)


def _any_source(raw: pd.DataFrame, fields: FieldMap) -> bool:
    if fields.source is None or fields.source not in raw.columns:
        return False
    return bool((raw[fields.source].fillna("").astype(str).str.strip() != "").any())


def _refuse_sourceless(fields: FieldMap) -> None:
    """Raise the cleaning's own error for a file none of whose rows has a source."""
    clean_incidents(pd.DataFrame({fields.id: ["1"]}), fields=replace(fields, source=None))
    raise AssertionError("a file without sources must be refused")  # pragma: no cover


def _raw_record(raw: pd.DataFrame, i: int) -> dict:
    """Row ``i`` as read, kept beside the reason it was refused (as the cleaning keeps it)."""
    return {str(k): v for k, v in raw.iloc[i].to_dict().items() if not str(k).startswith("_")}


def _once(load: GazetteerSource) -> GazetteerSource:
    """The gazetteer loaded at most once per import, however many chunks need it."""
    kept: list[Gazetteer | None] = []

    def get() -> Gazetteer | None:
        if not kept:
            kept.append(load())
        return kept[0]

    return get


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
    """Add the assignment columns; rows without a location (or no index) stay unassigned.

    Codes stay object arrays: as pandas' Arrow strings they would be converted
    once here and once more for the COPY.
    """
    n = len(frame)
    columns: dict[str, np.ndarray] = {c: np.full(n, None, dtype=object) for c in CODE_COLUMNS}
    columns["assign_status"] = np.full(n, None, dtype=object)
    columns["distance_m"] = np.full(n, np.nan)
    columns["generation_id"] = np.full(n, None, dtype=object)
    located = frame["location_status"].isin(_LOCATED).to_numpy()
    if index is not None and located.any():
        lon, lat = frame["lon"].to_numpy(dtype=float), frame["lat"].to_numpy(dtype=float)
        result = index.assign_arrays(lon[located], lat[located], tolerance=tolerance)
        for column in (*CODE_COLUMNS, "assign_status", "distance_m"):
            columns[column][located] = result[column]
        columns["generation_id"][located] = generation_id
    for column, values in columns.items():
        frame[column] = pd.Series(values, index=frame.index, dtype=values.dtype)


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


def store_rows(
    conn: Connection,
    frame: pd.DataFrame,
    batch_id: int | None,
    version: int | None,
    progress: Callable[[int], None] | None = None,
    before_insert: incident_load.StageStep | None = None,
) -> int:
    """One chunk of a file import: the new incidents and their assignments; returns how
    many incidents were new (:func:`app.db.incident_load.store_chunk`, no id comes back)."""
    rows = _incident_rows(frame, batch_id, version)
    for column in incident_load.STAGED_ASSIGNMENT_COLUMNS:
        values = frame[column].to_numpy()
        rows[column] = pd.Series(values, index=rows.index, dtype=values.dtype)
    inserted, _ = incident_load.store_chunk(conn, rows, progress, before_insert)
    return inserted


def _incident_rows(frame: pd.DataFrame, batch_id: int | None, version: int | None) -> pd.DataFrame:
    """The columns of ``incident`` a batch fills, points as EWKB (binary COPY's input)."""
    located = frame["location_status"].isin(_LOCATED).to_numpy()
    lon, lat = frame["lon"].to_numpy(dtype=float), frame["lat"].to_numpy(dtype=float)
    rows = frame[[c for c in incident_rows.INCIDENT_COPY_COLUMNS if c in frame]].copy()
    for column in ("reported_at", *STEP_COLUMNS):
        rows[column] = _instants(rows[column])
    categorised = rows["category"].notna().to_numpy()
    rows["taxonomy_version"] = _same_int(version, categorised)
    rows["location"] = bulk.ewkb_points(lon, lat, 4326, located).array
    rows["batch_id"] = _same_int(batch_id, np.ones(len(frame), dtype=bool))
    return rows[list(incident_rows.INCIDENT_COPY_COLUMNS)]


def _same_int(value: int | None, where: np.ndarray) -> pd.arrays.IntegerArray:
    """``value`` where ``where``, NULL elsewhere (and everywhere when ``value`` is None)."""
    return pd.arrays.IntegerArray(
        np.full(len(where), value or 0, dtype=np.int64), ~where | (value is None)
    )


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


@dataclass
class _Tally:
    """The report of an import, added up chunk by chunk."""

    label: str
    batch: int
    taxonomy_version: int | None
    rows_in: int = 0
    #: Rows stored or already present (cleaned, not rejected).
    kept: int = 0
    has_source: bool = False
    counts: Counter = field(default_factory=Counter)
    rejected: list[dict] = field(default_factory=list)
    by_status: Counter = field(default_factory=Counter)
    by_loop_status: Counter = field(default_factory=Counter)
    unlocated_reasons: Counter = field(default_factory=Counter)
    uncategorised: Counter = field(default_factory=Counter)

    def add(self, cleaned: CleanIncidents, new: int, geocoded: int) -> None:
        frame = cleaned.frame
        unlocated = (frame["location_status"] == "unlocated").to_numpy()
        self.rows_in += cleaned.rows_in
        self.kept += len(frame)
        self.counts.update(
            stored=int((~unlocated).sum()),
            unlocated=int(unlocated.sum()),
            already_present=len(frame) - new,
            geocoded=geocoded,
        )
        self.rejected += cleaned.rejected
        self.uncategorised.update(cleaned.uncategorised)
        self.by_status.update(_counts(frame["assign_status"]))
        self.by_loop_status.update(_counts(frame["status"]))
        self.unlocated_reasons.update(_counts(frame.loc[unlocated, "unlocated_reason"]))

    def report(self) -> IncidentImportReport:
        return IncidentImportReport(
            source=self.label,
            rows_in=self.rows_in,
            stored=self.counts["stored"],
            unlocated=self.counts["unlocated"],
            rejected=len(self.rejected),
            already_present=self.counts["already_present"],
            geocoded=self.counts["geocoded"],
            batch_id=self.batch,
            rejected_rows=self.rejected,
            uncategorised=dict(self.uncategorised),
            by_loop_status=dict(self.by_loop_status),
            taxonomy_version=self.taxonomy_version,
            by_status=dict(self.by_status),
            unlocated_reasons=dict(self.unlocated_reasons),
        )


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items()}


def _set_rows_in(conn: Connection, batch: int, rows_in: int) -> None:
    """The batch's input rows, known once the last chunk is read."""
    conn.execute(update(ImportBatch).where(ImportBatch.id == batch).values(rows_in=rows_in))
