"""Incidents through the API: create one (clean, locate, assign, store) and move it along.

A created incident goes through the same cleaning rules as a bulk import
(``gis.incidents.clean_incidents``: source, category, time, coordinates, CRS,
swapped axes) but skips the batch machinery: one row is assigned with the
in-memory index of the active generation and inserted directly. An address
without coordinates is geocoded against the ``address_point`` gazetteer, kept in
memory and reloaded when it changes.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from app.api.deps import LOCAL_TZ, AppState
from app.api.errors import NotFoundError
from app.api.schemas import IncidentIn
from app.db import queries
from app.db.models import AddressPoint
from app.services.registry import GenerationView, assign_hierarchy
from app.services.security import Principal
from app.services.taxonomy import Taxonomy
from app.services.workflow import STEP_TIMESTAMP, plan_transition
from gis.errors import ValidationError
from gis.geocode import Gazetteer
from gis.incidents import FieldMap, clean_incidents

_PAD_DEG = (
    0.5  # as app.services.incident_import: only to tell swapped lat/lon from a far-away point
)


# -- creation --------------------------------------------------------------------------
def create_incident(
    state: AppState, data: IncidentIn, tolerance: float, actor: Principal | None
) -> tuple[int, bool]:
    """Store a new incident; returns (id, created). An existing (source, id) is returned as is."""
    with state.engine.connect() as conn:
        existing = queries.incident_id_by_external(conn, data.source, data.external_id)
    if existing is not None:
        return existing, False
    view = state.registry.active
    row = _cleaned_row(data, state.taxonomy, view)
    if row["location_status"] == "to_geocode":
        _geocode(state, row)
    values, assignment = _stored_values(row, view, tolerance)
    with state.engine.begin() as conn:
        new_id = queries.insert_incident(conn, values, assignment)
        if new_id is None:  # created concurrently by a retry of the same request
            found = queries.incident_id_by_external(conn, data.source, data.external_id)
            assert found is not None
            return found, False
        queries.log_status(
            conn,
            new_id,
            None,
            "reported",
            None,
            None,
            "created via the API",
            actor.key_id if actor else None,
        )
    return new_id, True


def _cleaned_row(data: IncidentIn, taxonomy: Taxonomy, view: GenerationView | None) -> dict:
    reported = data.reported_at or datetime.now(UTC)
    if reported.tzinfo is None:
        reported = reported.replace(tzinfo=LOCAL_TZ)
    raw = pd.DataFrame(
        [
            {
                "id": data.external_id,
                "source": data.source,
                "category": data.category,
                "description": data.description or "",
                "address": data.address or "",
                "reported_at": reported.isoformat(),
                "crs": data.crs,
                "lon": "" if data.lon is None else repr(data.lon),
                "lat": "" if data.lat is None else repr(data.lat),
            }
        ],
        dtype=str,
    )
    bounds = None
    if view is not None:
        minx, miny, maxx, maxy = view.index.bounds
        bounds = (minx - _PAD_DEG, miny - _PAD_DEG, maxx + _PAD_DEG, maxy + _PAD_DEG)
    cleaned = clean_incidents(
        raw,
        fields=FieldMap(),
        source=data.source,
        crs=data.crs,
        categories=taxonomy.frame,
        expected_bounds=bounds,
    )
    if cleaned.rejected:
        reason = cleaned.rejected[0]["reason"]
        raise ValidationError(f"incident refused: {reason}")
    return cleaned.frame.iloc[0].to_dict()


def _stored_values(
    row: dict, view: GenerationView | None, tolerance: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The incident row, and its assignment under the active generation (None if unlocated)."""
    values: dict[str, Any] = {
        name: _plain(row.get(name))
        for name in (
            "source",
            "external_id",
            "category",
            "description",
            "address",
            "raw_lon",
            "raw_lat",
            "raw_crs",
            "location_status",
            "unlocated_reason",
        )
    }
    values["reported_at"] = pd.Timestamp(row["reported_at"]).to_pydatetime()
    values["status"] = "reported"
    located = row["location_status"] in ("located", "geocoded")
    values["location"] = queries.point_expr(row["lon"], row["lat"]) if located else None
    if not located or view is None:
        return values, None
    answer = assign_hierarchy(
        view.index,
        np.array([row["lon"]], dtype=float),
        np.array([row["lat"]], dtype=float),
        tolerance,
    )
    assignment = {key: _plain(answer[key][0]) for key in answer}
    assignment["generation_id"] = view.generation.id
    return values, assignment


def _plain(value: Any) -> Any:
    """None for NaN/NA, Python scalars for NumPy ones."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# -- geocoding -------------------------------------------------------------------------
class GazetteerCache:
    """The gazetteer in memory, reloaded when address_point changes (count or max id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._gazetteer: Gazetteer | None = None

    def get(self, engine: Engine) -> Gazetteer | None:
        with engine.connect() as conn:
            key = tuple(conn.execute(select(func.count(), func.max(AddressPoint.id))).one())
            with self._lock:
                if key != self._key:
                    self._gazetteer = _load_gazetteer(conn) if key[0] else None
                    self._key = key
                return self._gazetteer


def _load_gazetteer(conn: Connection) -> Gazetteer:
    rows = (
        conn.execute(
            select(
                AddressPoint.address,
                AddressPoint.lon,
                AddressPoint.lat,
                AddressPoint.micro_grid_code,
            )
        )
        .mappings()
        .all()
    )
    return Gazetteer(pd.DataFrame(rows))


def _geocode(state: AppState, row: dict) -> None:
    cache = state.extras.setdefault("gazetteer", GazetteerCache())
    gazetteer = cache.get(state.engine)
    if gazetteer is None:
        row.update(
            location_status="unlocated", unlocated_reason="address only, and no gazetteer is loaded"
        )
        return
    found = gazetteer.geocode([row["address"]]).iloc[0]
    if pd.isna(found["lon"]):
        row.update(location_status="unlocated", unlocated_reason=str(found["reason"]))
    else:
        row.update(location_status="geocoded", lon=float(found["lon"]), lat=float(found["lat"]))


# -- the closed loop -------------------------------------------------------------------
def change_status(
    engine: Engine,
    incident_id: int,
    target: str,
    level: str | None,
    note: str | None,
    actor: Principal,
) -> None:
    """Apply one step (or an escalation) under a row lock, and log it."""
    with engine.begin() as conn:
        current = queries.incident_record(conn, incident_id, lock=True)
        if current is None:
            raise NotFoundError(f"no incident {incident_id}")
        change = plan_transition(current["status"], current["handling_level"], target, level)
        values: dict[str, Any] = {"status": change.status, "handling_level": change.handling_level}
        if change.kind in ("advance", "reopen"):
            values[STEP_TIMESTAMP[change.status]] = func.now()
        values.update({column: None for column in change.clears})
        queries.update_incident(conn, incident_id, values)
        queries.log_status(
            conn,
            incident_id,
            current["status"],
            change.status,
            current["handling_level"],
            change.handling_level,
            note,
            actor.key_id,
        )


# -- documents -------------------------------------------------------------------------
def incident_document(
    record: dict,
    view: GenerationView | None,
    taxonomy: Taxonomy,
    now: datetime,
    history: list[dict] | None = None,
) -> dict[str, Any]:
    """The JSON of one incident (``schemas.IncidentOut``)."""
    category = taxonomy.by_code.get(record["category"] or "")
    deadline = (
        record["reported_at"] + timedelta(hours=category.deadline_hours)
        if category and record["reported_at"]
        else None
    )
    return {
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
    if deadline is None:
        return None
    handled = record["handled_at"]
    return handled > deadline if handled is not None else now > deadline


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
