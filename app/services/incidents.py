"""Incidents through the API: create one (clean, locate, assign, store) and move it along.

A created incident is a batch of one through the import pipeline
(``app.services.incident_import``: the same cleaning, geocoding, assignment and
storing rules) but without an import batch: it is assigned with the in-memory
index of the active generation, and its first status is logged. An address
without coordinates is geocoded against the ``address_point`` gazetteer, kept in
memory and reloaded when it changes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import incidents as incident_rows
from app.db import queries
from app.errors import ConflictError
from app.services.incident_import import prepare_batch, store_batch, stored_gazetteer
from app.services.registry import GenerationView
from app.services.security import Principal
from app.services.taxonomy import Taxonomy
from gis.errors import ValidationError
from gis.geocode import Gazetteer
from gis.incidents import FieldMap
from gis.vocabulary import LOCAL_TZ, OPEN_STATUSES, STEP_TIMESTAMP

T = TypeVar("T")


# -- creation --------------------------------------------------------------------------
@dataclass(frozen=True)
class NewIncident:
    """One incident as reported: coordinates in ``crs``, an address, or both."""

    source: str
    external_id: str
    category: str
    description: str | None = None
    address: str | None = None
    reported_at: datetime | None = None  # default now; naive means China Standard Time
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"


class GazetteerCache:
    """The gazetteer in memory, reloaded when address_point changes (count or max id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._gazetteer: Gazetteer | None = None

    def get(self, engine: Engine) -> Gazetteer | None:
        with engine.connect() as conn:
            version = incident_rows.gazetteer_version(conn)
            with self._lock:
                if version != self._version:
                    self._gazetteer = stored_gazetteer(conn) if version[0] else None
                    self._version = version
                return self._gazetteer


def create_incident(
    engine: Engine,
    incident: NewIncident,
    *,
    view: GenerationView | None,
    taxonomy: Taxonomy,
    gazetteer: GazetteerCache,
    tolerance: float,
    actor: Principal | None,
    answer: Callable[[Connection, int], T],
) -> tuple[T, bool]:
    """Store a new incident; returns (``answer(conn, id)``, created).

    ``answer`` builds the response inside the storing transaction: if it fails, nothing
    is stored, so a request that answers an error has changed nothing. Sending an
    existing (source, external_id) again returns it as is when the report is the same,
    and is a :class:`ConflictError` naming the fields that differ otherwise.
    """
    prepared = prepare_batch(
        _raw_row(incident),
        fields=FieldMap(),
        source=incident.source,
        crs=incident.crs,
        categories=taxonomy.frame,
        index=view.index if view else None,
        generation_id=view.generation.id if view else None,
        tolerance=tolerance,
        gazetteer=lambda: gazetteer.get(engine),
    )
    if prepared.cleaned.rejected:
        raise ValidationError(f"incident refused: {prepared.cleaned.rejected[0]['reason']}")
    row = prepared.cleaned.frame.iloc[0]
    key = (str(row["source"]), str(row["external_id"]))
    with engine.begin() as conn:
        existing = queries.incident_id_by_external(conn, *key)
        if existing is None:
            existing = store_batch(conn, prepared.cleaned.frame, batch_id=None).get(key)
            if existing is not None:
                queries.log_status(
                    conn,
                    existing,
                    None,
                    "reported",
                    None,
                    None,
                    # a signed-in user is named in the timeline; a system only by its key
                    None if actor and actor.user_id else "created via the API",
                    actor.key_id if actor else None,
                    actor.user_id if actor else None,
                )
                return answer(conn, existing), True
            # created concurrently by a retry of the same request
            existing = queries.incident_id_by_external(conn, *key)
            assert existing is not None
        _same_report(conn, existing, row, compare_time=incident.reported_at is not None)
        return answer(conn, existing), False


#: Fields of a report compared when it is sent again (the stored record's names).
_REPORT_FIELDS = ("category", "description", "address", "raw_lon", "raw_lat", "raw_crs")


def _same_report(conn: Connection, incident_id: int, row: pd.Series, compare_time: bool) -> None:
    """Raise :class:`ConflictError` naming the fields in which ``row`` differs from the record."""
    record = queries.incident_record(conn, incident_id)
    assert record is not None
    fields = [*_REPORT_FIELDS, "reported_at"] if compare_time else list(_REPORT_FIELDS)
    differing = [name for name in fields if not _equal(_plain(row[name]), record[name])]
    if differing:
        raise ConflictError(
            f"已有相同来源与编号的事件 {incident_id}，内容不同 / incident {incident_id} has this "
            f"source and external_id with a different {', '.join(differing)}; use a new "
            "external_id for a new report"
        )


def _equal(given: Any, stored: Any) -> bool:
    if given is None or stored is None:
        return given is None and stored is None
    if isinstance(stored, float) or isinstance(given, float):
        return math.isclose(float(given), float(stored), rel_tol=0, abs_tol=1e-9)
    if isinstance(stored, datetime):
        return pd.Timestamp(given) == pd.Timestamp(stored)
    return str(given) == str(stored)


def _raw_row(incident: NewIncident) -> pd.DataFrame:
    """The incident as the text columns of an import file."""
    reported = incident.reported_at or datetime.now(UTC)
    if reported.tzinfo is None:
        reported = reported.replace(tzinfo=LOCAL_TZ)
    return pd.DataFrame(
        [
            {
                "id": incident.external_id,
                "source": incident.source,
                "category": incident.category,
                "description": incident.description or "",
                "address": incident.address or "",
                "reported_at": reported.isoformat(),
                "crs": incident.crs,
                "lon": "" if incident.lon is None else repr(incident.lon),
                "lat": "" if incident.lat is None else repr(incident.lat),
            }
        ],
        dtype=str,
    )


def _plain(value: Any) -> Any:
    """None for NaN/NA, Python scalars for NumPy ones."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# -- documents -------------------------------------------------------------------------
#: The action of a timeline entry for a step an imported record carries (an archive's
#: ticket, the demo's history) but nobody took here: no status-log row says who.
ARCHIVED_STEP = "archive"


def timeline(conn: Connection, record: dict) -> list[dict]:
    """The incident's history: its status log, with the steps its record has a time for
    but the log lacks (a ticket imported closed) put in at those times, marked
    :data:`ARCHIVED_STEP`."""
    logged = queries.status_history(conn, record["id"])
    return sorted(archived_steps(record, logged) + logged, key=lambda step: step["at"])


def archived_steps(record: dict, logged: list[dict]) -> list[dict]:
    """The record's steps with a time that no ``logged`` entry moved to, oldest first."""
    taken = {step["to_status"] for step in logged}
    steps, before = [], None
    for status, column in STEP_TIMESTAMP.items():
        at = record.get(column)
        if at is None:
            continue
        if status not in taken:
            steps.append(
                {
                    "from_status": before,
                    "to_status": status,
                    "from_level": None,
                    "to_level": record["handling_level"] if status == "handled" else None,
                    "note": None,
                    "at": at,
                    "action": ARCHIVED_STEP,
                    "departments": None,
                    "assignee_name": record["assignee_name"] if status == "dispatched" else None,
                    "by": None,
                }
            )
        before = status
    return steps


def incident_document(
    record: dict,
    view: GenerationView | None,
    taxonomy: Taxonomy,
    now: datetime,
    history: list[dict] | None = None,
    handling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON of one incident (``schemas.IncidentOut``); ``handling`` adds who handles it
    (:func:`app.services.handling.handling_document`)."""
    category = taxonomy.by_code.get(record["category"] or "")
    deadline = record["deadline_at"]  # stored on write: what the overdue filter compares
    return {
        **(handling or {}),
        "version": record["version"],
        "handled_late": _handled_late(record, deadline),
        "id": record["id"],
        "source": record["source"],
        "external_id": record["external_id"],
        "category": record["category"],
        "category_name": category.name_zh if category else None,
        "description": record["description"],
        "address": record["address"],
        "reported_at": record["reported_at"],
        "status": record["status"],
        "handling_level": record["handling_level"],
        "timestamps": {status: record[column] for status, column in STEP_TIMESTAMP.items()},
        "deadline_at": deadline,
        "overdue": _overdue(record, deadline, now),
        "location": None if record["lon"] is None else {"lon": record["lon"], "lat": record["lat"]},
        "raw": {"lon": record["raw_lon"], "lat": record["raw_lat"], "crs": record["raw_crs"]},
        "location_status": record["location_status"],
        "unlocated_reason": record["unlocated_reason"],
        "assignment": _assignment(record, view),
        "history": history,
    }


def _overdue(record: dict, deadline: datetime | None, now: datetime) -> bool | None:
    """Open and past the deadline: the same rule as ``queries.overdue_now``."""
    if deadline is None:
        return None
    return record["status"] in OPEN_STATUSES and now > deadline


def _handled_late(record: dict, deadline: datetime | None) -> bool | None:
    handled = record["handled_at"]
    return None if deadline is None or handled is None else handled > deadline


def _assignment(record: dict, view: GenerationView | None) -> dict[str, Any]:
    same = view is not None and record["generation_id"] == view.generation.id

    def area(column: str) -> dict | None:
        code = record[column]
        if code is None:
            return None
        return view.describe(code) if same and view else {"code": code}

    return {
        "generation_id": record["generation_id"],
        "status": record["assign_status"],
        "distance_m": _plain(record["distance_m"]),
        "assigned_at": record["assigned_at"],
        "street": area("street_code"),
        "community": area("community_code"),
        "grid": area("grid_code"),
        "micro_grid": area("micro_grid_code"),
    }
