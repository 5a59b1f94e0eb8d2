"""Incidents: create (located and assigned on write), list, read, and the closed loop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Connection
from starlette.responses import JSONResponse

from app.api.deps import (
    AppState,
    BBoxDep,
    ConnDep,
    GenerationParam,
    IncidentQueryDep,
    OperatorDep,
    PageDep,
    StateDep,
    TimeWindowDep,
    ViewerDep,
    checked_tolerance,
    resolve_generation,
)
from app.api.errors import ERROR_RESPONSES
from app.api.geojson import GeoJSONResponse, feature_collection, paging_links
from app.api.schemas import FeatureCollection, IncidentIn, IncidentOut, TransitionIn
from app.db import queries
from app.errors import NotFoundError
from app.services import incidents as incident_service
from app.services.security import Principal

T = TypeVar("T")
router = APIRouter(prefix="/incidents", tags=["incidents"], responses=ERROR_RESPONSES)

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident id.")]


@router.post(
    "",
    response_model=IncidentOut,
    status_code=201,
    summary="Report an incident",
    responses={
        200: {
            "model": IncidentOut,
            "description": "Already reported (same source and external_id): the stored incident.",
        }
    },
)
def create(state: StateDep, actor: OperatorDep, incident: IncidentIn) -> JSONResponse:
    """Locate (convert the CRS, or geocode the address), assign and store an incident.

    Idempotent by `source` + `external_id`: sending it again returns the stored
    incident with 200 instead of 201. The answer carries the assignment
    (street, community, grid, micro-grid, status and distance).
    """
    tolerance = checked_tolerance(incident.tolerance, state.api.max_tolerance_m)

    def answer(conn: Connection, incident_id: int) -> dict:
        doc = _record_document(state, conn, incident_id, with_history=False)
        return IncidentOut.model_validate(doc).model_dump(mode="json")

    body, created = create_reported(state, incident, tolerance, actor, answer)
    return JSONResponse(body, status_code=201 if created else 200)


@router.get(
    "",
    response_class=GeoJSONResponse,
    response_model=FeatureCollection,
    summary="Incidents, filtered",
)
def list_incidents(
    request: Request,
    conn: ConnDep,
    _: ViewerDep,
    bbox: BBoxDep,
    page: PageDep,
    window: TimeWindowDep,
    f: IncidentQueryDep,
    grid: Annotated[
        str | None,
        Query(pattern=r"^\d{1,32}$", description=("Only incidents assigned to this grid.")),
    ] = None,
    generation: GenerationParam = None,
) -> GeoJSONResponse:
    """Incidents as GeoJSON, newest first, filtered by bbox, grid, category, status,
    source, handling level and report time (the same filters as
    /collections/incidents/items)."""
    gen_id = resolve_generation(conn, generation).id if generation is not None else None
    filters = f.to_filter(
        window, bbox, generation_id=gen_id, area_level="grid" if grid else None, area_code=grid
    )
    matched, features = queries.incident_features(
        conn, filters, page.limit, page.offset, newest_first=True
    )
    links = paging_links(request, page.offset, page.limit, len(features), matched)
    return GeoJSONResponse(feature_collection(features, matched=matched, links=links))


@router.get("/{incident_id}", response_model=IncidentOut, summary="One incident")
def read(state: StateDep, _: ViewerDep, incident_id: IncidentId) -> dict:
    """The incident, its assignment, deadline and the history of its status changes."""
    return _document(state, incident_id, with_history=True)


@router.post(
    "/{incident_id}/transitions",
    response_model=IncidentOut,
    summary="Move an incident through the closed loop",
)
def transition(
    state: StateDep, actor: OperatorDep, incident_id: IncidentId, step: TransitionIn
) -> dict:
    """reported → registered → dispatched → handled → verified → closed.

    Each step records its time. A failed verification sends a `handled`
    incident back to `dispatched`. The handling level (grid, community, street)
    is set at registration or dispatch and can only be escalated. Anything else
    is refused with 409 and the reason.
    """
    incident_service.change_status(
        state.engine, incident_id, step.status, step.handling_level, step.note, actor
    )
    return _document(state, incident_id, with_history=True)


def create_reported(
    state: AppState,
    incident: IncidentIn,
    tolerance: float,
    actor: Principal,
    answer: Callable[[Connection, int], T],
) -> tuple[T, bool]:
    """Store an incident of a request (this route's or Open311's); returns (answer, created).

    ``answer(conn, id)`` builds the response in the storing transaction (see
    :func:`app.services.incidents.create_incident`).
    """
    return incident_service.create_incident(
        state.engine,
        incident_service.NewIncident(**incident.model_dump(exclude={"tolerance"})),
        view=state.registry.active,
        taxonomy=state.taxonomy,
        gazetteer=state.gazetteer,
        tolerance=tolerance,
        actor=actor,
        answer=answer,
    )


def _document(state: AppState, incident_id: int, with_history: bool) -> dict:
    with state.engine.connect() as conn:
        return _record_document(state, conn, incident_id, with_history)


def _record_document(state: AppState, conn: Connection, incident_id: int, with_history: bool):
    record = queries.incident_record(conn, incident_id)
    if record is None:
        raise NotFoundError(f"no incident {incident_id}")
    history = queries.status_history(conn, incident_id) if with_history else None
    return incident_service.incident_document(
        record, state.registry.active, state.taxonomy, datetime.now(UTC), history
    )
