"""Load the synthetic demo district (gis.demo) into PostGIS in one transaction.

The demo's incidents carry their history through the closed loop; they go in
through the ordinary import as an archive's historical tickets do, checked by
the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import incident_load, repo
from app.db import incidents as incident_rows
from app.db import staff as staff_rows
from app.services.area_import import import_areas_on
from app.services.incident_import import IncidentImportReport, import_incidents
from gis.incidents import HISTORY_COLUMNS, STEP_COLUMNS, FieldMap
from gis.vocabulary import AREA_LEVELS as LEVELS
from gis.vocabulary import INCIDENT_STATUSES

#: The demo's columns, named as gridmap's fields: report and history (an archive's tickets).
DEMO_FIELDS = FieldMap(id="external_id", **{column: column for column in HISTORY_COLUMNS})
#: Statuses of incidents someone was dispatched to.
DISPATCHED = INCIDENT_STATUSES[INCIDENT_STATUSES.index("dispatched") :]

DEMO_GENERATION = "demo"
GAZETTEER = "gis.demo"

Progress = Callable[[str, int, int], None]


@dataclass
class DemoLoadReport:
    generation: str
    counts: dict[str, int]
    staff: int
    already_loaded: bool
    gazetteer: int = 0
    incidents: IncidentImportReport | None = None
    incidents_stored: int = 0
    #: Incidents dispatched (or further) whose assignee is a grid worker of their grid.
    dispatched_to_workers: int = 0


def load_demo(
    engine: Engine,
    demo,
    *,
    reload: bool = False,
    progress: Progress | None = None,
    generation: str = DEMO_GENERATION,
) -> DemoLoadReport:
    """Store ``demo`` (a gis.demo.DemoDistrict) as the active generation ``generation``.

    Areas, staff and the gazetteer go in one transaction; the incidents then go
    through the ordinary import path (cleaning, geocoding, assignment) as one
    batch. Idempotent: when the generation already holds the demo nothing is
    written (unless ``reload``, which replaces it). A generated city
    (``generation`` other than ``demo``) replaces the stored incidents whenever
    its areas are written: its incidents are a benchmark's, never mixed with others.
    """
    steps = len(LEVELS) + 3
    report = _load_boundaries(
        engine, demo, reload, progress, steps, generation, generation != DEMO_GENERATION
    )
    if progress:
        progress("incidents", steps, steps)
    with engine.connect() as conn:
        stored = incident_rows.incident_count(conn)
    if report.already_loaded and stored >= len(demo.incidents) * 0.9:
        report.incidents_stored = stored
        return report
    report.incidents = import_incidents(
        engine,
        _incident_text(demo.incidents),
        label=f"gis.demo seed={demo.seed} incidents",
        fields=DEMO_FIELDS,
        before_insert=_dispatched_to_grid_workers,
    )
    with engine.connect() as conn:
        report.incidents_stored = incident_rows.incident_count(conn)
        report.dispatched_to_workers = incident_rows.handled_by_staff(
            conn, report.incidents.batch_id
        )
    return report


def _dispatched_to_grid_workers(conn: Connection, stage: str) -> None:
    """Who was dispatched to each demo incident dispatched or further: a grid worker of
    its grid (the worker-level assessment counts incidents by this assignee).

    Set-based SQL in the import, not the generator: an incident's grid is known only
    once the import has located it (address-only reports are geocoded) and assigned
    it under the active generation, and the roster's ids only once the staff are
    stored. On the staged rows, before they are inserted: an UPDATE of a million
    stored incidents afterwards took a minute (every row written twice, its indexes too).
    """
    incident_load.name_grid_workers(conn, stage, DISPATCHED)


def _load_boundaries(
    engine, demo, reload, progress, steps, generation, own_incidents
) -> DemoLoadReport:
    with engine.begin() as conn:
        existing = repo.get_generation(conn, generation)
        if existing and not reload and _matches(conn, existing.id, demo):
            repo.activate_generation(conn, existing.id)
            return DemoLoadReport(
                generation,
                repo.counts_by_level(conn, existing.id),
                staff_rows.staff_count(conn, existing.id),
                already_loaded=True,
                gazetteer=incident_rows.gazetteer_count(conn),
            )
        if existing is None:
            gen = repo.create_generation(
                conn,
                generation,
                note=f"synthetic demo {'city' if own_incidents else 'district'}, seed {demo.seed}",
                activate=True,
            )
        else:
            gen = existing
            repo.activate_generation(conn, gen.id)
        if (existing is not None and reload) or own_incidents:
            incident_rows.delete_all_incidents(conn)
        frames = _level_frames(demo)
        for step, level in enumerate(LEVELS, start=1):
            if progress:
                progress(f"areas: {level}", step, steps)
            import_areas_on(
                conn,
                frames[level],
                level,
                source=f"gis.demo seed={demo.seed}",
                generation=generation,
                replace=True,
                code_field="code",
                parent_field="parent_code" if level != "district" else None,
                name_field="name",
                kind_field="kind",
            )
        if progress:
            progress("staff", len(LEVELS) + 1, steps)
        staff_stored = staff_rows.replace_staff(conn, demo.staff, gen.id)
        if progress:
            progress("gazetteer", len(LEVELS) + 2, steps)
        incident_rows.delete_gazetteer_source(conn, GAZETTEER)
        gazetteer = repo.store_gazetteer(conn, demo.gazetteer, source=GAZETTEER)
        return DemoLoadReport(
            generation,
            repo.counts_by_level(conn, gen.id),
            staff_stored,
            already_loaded=False,
            gazetteer=gazetteer,
        )


def _incident_text(incidents: pd.DataFrame) -> pd.DataFrame:
    """The demo's incidents as the text columns an export file would have: the report,
    then the history (status, handling level, step times; empty where none)."""

    def coord(values: pd.Series) -> pd.Series:
        return values.map(lambda v: "" if pd.isna(v) else repr(float(v)))

    text = pd.DataFrame(
        {
            "external_id": incidents["external_id"].astype(str),
            "source": incidents["source"].astype(str),
            "category": incidents["category"].astype(str),
            "description": incidents["description"].fillna("").astype(str),
            "address": incidents["address"].fillna("").astype(str),
            "reported_at": _time_text(incidents["reported_at"]),
            "lon": coord(incidents["lon"]),
            "lat": coord(incidents["lat"]),
            "crs": incidents["crs"].fillna("").astype(str),
        }
    )
    for column in ("status", "handling_level"):
        text[column] = incidents[column].fillna("").astype(str)
    for column in STEP_COLUMNS:
        text[column] = _time_text(incidents[column])
    return text


def _time_text(moments: pd.Series) -> pd.Series:
    """Aware times as ISO 8601 local time and offset (``2023-05-01T08:00:00+08:00``), ""
    for none: what ``isoformat`` writes for the demo's whole seconds, but a column at a
    time (a million ``isoformat`` calls per column cost seconds)."""
    index = pd.DatetimeIndex(moments)
    local = index.tz_localize(None).to_numpy(dtype="datetime64[s]")
    utc = index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[s]")
    minutes = pd.Series((local - utc).astype(np.int64) // 60)
    offsets = minutes.map({m: _offset(m) for m in minutes.unique()})
    texts = pd.Series(np.datetime_as_string(local, unit="s"), dtype=object) + offsets
    return texts.where(~index.isna(), "").set_axis(moments.index)


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _level_frames(demo) -> dict[str, pd.DataFrame]:
    return {
        "district": demo.district,
        "street": demo.streets,
        "community": demo.communities,
        "grid": demo.grids,
        "micro_grid": demo.micro_grids,
    }


def _matches(conn: Connection, generation_id: int, demo) -> bool:
    wanted = {level: len(frame) for level, frame in _level_frames(demo).items()}
    return repo.counts_by_level(conn, generation_id) == wanted and staff_rows.staff_count(
        conn, generation_id
    ) == len(demo.staff)
