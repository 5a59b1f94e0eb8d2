"""Load the synthetic demo district (gis.demo) into PostGIS in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import incidents as incident_rows
from app.db import repo
from app.db import staff as staff_rows
from app.services.area_import import import_areas_on
from app.services.incident_import import IncidentImportReport, import_incidents
from gis.incidents import FieldMap
from gis.vocabulary import AREA_LEVELS as LEVELS

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
        fields=FieldMap(id="external_id"),
    )
    with engine.connect() as conn:
        report.incidents_stored = incident_rows.incident_count(conn)
    return report


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
    """The demo's incidents as the text columns an export file would have."""

    def coord(values: pd.Series) -> pd.Series:
        return values.map(lambda v: "" if pd.isna(v) else repr(float(v)))

    return pd.DataFrame(
        {
            "external_id": incidents["external_id"].astype(str),
            "source": incidents["source"].astype(str),
            "category": incidents["category"].astype(str),
            "description": incidents["description"].fillna("").astype(str),
            "address": incidents["address"].fillna("").astype(str),
            "reported_at": incidents["reported_at"].map(lambda t: t.isoformat()),
            "lon": coord(incidents["lon"]),
            "lat": coord(incidents["lat"]),
            "crs": incidents["crs"].fillna("").astype(str),
        }
    )


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
