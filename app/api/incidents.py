"""Incidents: create (located and assigned on write), list, read, the closed loop, photos."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, File, Header, Path, Query, Request, Response, UploadFile
from sqlalchemy import Connection
from starlette.responses import FileResponse, JSONResponse

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
)
from app.api.errors import ERROR_RESPONSES
from app.api.geojson import GeoJSONResponse
from app.api.incident_lists import grid_incident_filter, newest_incidents_page
from app.api.schemas import FeatureCollection, IncidentIn, IncidentOut, PhotosOut, TransitionIn
from app.db import queries
from app.errors import NotFoundError
from app.services import handling, photos
from app.services import incidents as incident_service
from app.services.scope import check_incident
from app.services.security import Principal
from gis.errors import ValidationError

T = TypeVar("T")
router = APIRouter(prefix="/incidents", tags=["incidents"], responses=ERROR_RESPONSES)

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident id.")]
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="The ETag of the incident as read (GET /incidents/{id}); the same as "
        "sending its `version` in the body.",
    ),
]


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
def create(
    request: Request, state: StateDep, actor: OperatorDep, incident: IncidentIn
) -> JSONResponse:
    """Locate (convert the CRS, or geocode the address), assign and store an incident.

    Idempotent by `source` + `external_id`: sending it again returns the stored
    incident with 200 instead of 201. The answer carries the assignment
    (street, community, grid, micro-grid, status and distance).
    """
    tolerance = checked_tolerance(incident.tolerance, state.api.max_tolerance_m)

    def answer(conn: Connection, incident_id: int) -> dict:
        doc = _record_document(state, conn, incident_id, with_history=False, request=request)
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
    viewer: ViewerDep,
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
    filters = grid_incident_filter(conn, f, window, bbox, grid, generation, viewer.area)
    return newest_incidents_page(request, conn, filters, page)


@router.get("/{incident_id}", response_model=IncidentOut, summary="One incident")
def read(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    incident_id: IncidentId,
    response: Response,
) -> dict:
    """The incident, its assignment, deadline, photos and the history of its status
    changes (403 outside the caller's area). The ETag is its version (see the transitions)."""
    doc = _document(state, incident_id, with_history=True, viewer=viewer, request=request)
    response.headers["ETag"] = etag(doc["version"])
    return doc


@router.post(
    "/{incident_id}/transitions",
    response_model=IncidentOut,
    summary="Move an incident through the closed loop",
)
def transition(
    request: Request,
    state: StateDep,
    actor: OperatorDep,
    incident_id: IncidentId,
    step: TransitionIn,
    response: Response,
    if_match: IfMatchHeader = None,
) -> dict:
    """reported → registered → dispatched → handled → verified → closed.

    Each step records its time. A failed verification sends a `handled`
    incident back to `dispatched`. The handling level (grid, community, street)
    is set at registration or dispatch and can only be escalated. Dispatch names
    who handles it: a staff member of the incident's grid (`assignee`) or a
    `department`. At street level the street may whistle (吹哨, `action: whistle`)
    departments, each of which reports in (报到) by handling it (`status: handled`
    with its `department`). Anything the rules forbid is refused with 409 and the
    reason; an unknown assignee or department, or an unknown field, with 422.

    Send the `version` you saw (or `If-Match` with the ETag of GET): if the
    incident changed since, the action is refused with 409 and `current` says
    what it is now. Of simultaneous actions on one version exactly one succeeds.
    """
    version = expected_version(step.version, if_match)
    handling.apply_step(
        state.engine, incident_id, step_of(step, version), actor, check_scope=check_incident
    )
    doc = _document(state, incident_id, with_history=True, viewer=actor, request=request)
    response.headers["ETag"] = etag(doc["version"])
    return doc


# -- photos -----------------------------------------------------------------------------------
PhotoName = Annotated[
    str, Path(max_length=40, description="A photo's name, as listed in `photos` of the incident.")
]
PhotoUploads = Annotated[
    list[UploadFile],
    File(
        alias="photos",
        description=f"Up to {photos.MAX_PHOTOS} JPEG, PNG or WebP images (by their content, "
        f"not their name), {photos.MAX_PHOTO_BYTES // (1024 * 1024)} MB each.",
    ),
]
_ATTACH_DOC = f"""Store photos of an incident in the caller's scope (multipart field `photos`,
as the console's report form sends them), checked and kept exactly as the console's are.

A file that is not a JPEG, PNG or WebP image is refused with 422, one over
{photos.MAX_PHOTO_BYTES // (1024 * 1024)} MB with 413, and then none of the batch is stored;
an incident keeps at most {photos.MAX_INCIDENT_PHOTOS} photos (409 past that). Needs an
operator key; another area's incident is 403, an unknown one 404. The answer lists the
URLs of the photos sent and of all the incident's photos."""


@router.post(
    "/{incident_id}/photos",
    response_model=PhotosOut,
    status_code=201,
    summary="Attach photos to an incident",
    description=_ATTACH_DOC,
)
def attach_photos(
    request: Request,
    state: StateDep,
    actor: OperatorDep,
    incident_id: IncidentId,
    photos_sent: PhotoUploads,
) -> dict:
    """Check the incident and the caller's scope first, then the photos (see _ATTACH_DOC)."""
    with state.engine.connect() as conn:
        found, grid = queries.incident_grid(conn, incident_id)
    if not found:
        raise NotFoundError(f"no incident {incident_id}")
    check_incident(actor, grid, incident_id)
    # one byte past the limit is enough to refuse it; nothing larger is held in memory
    sent = [(u.filename or "photo", u.file.read(photos.MAX_PHOTO_BYTES + 1)) for u in photos_sent]
    stored = photos.attach(state.settings.data_dir, incident_id, sent)
    return {
        "incident_id": incident_id,
        "stored": [photo_url(request, incident_id, name) for name in stored],
        "photos": photo_urls(request, state, incident_id),
    }


@router.get(
    "/{incident_id}/photos/{name}",
    name="incident_photo",
    response_class=FileResponse,
    summary="A photo of an incident",
    responses={200: {"content": {t: {} for t in photos.MEDIA_TYPES.values()}}},
)
def photo(state: StateDep, viewer: ViewerDep, incident_id: IncidentId, name: PhotoName):
    """The photo itself, for keys and signed-in users whose scope holds the incident
    (403 otherwise); the URLs are in the incident's `photos` and Open311's `media_url`."""
    path, media_type = photos.served(
        state.engine, state.settings.data_dir, viewer, incident_id, name
    )
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private"})


def photo_url(request: Request, incident_id: int, name: str) -> str:
    """The absolute URL of a photo (behind a proxy, as the request reached the app)."""
    return str(request.url_for("incident_photo", incident_id=str(incident_id), name=name))


def photo_urls(request: Request, state: AppState, incident_id: int) -> list[str]:
    """The URLs of the incident's photos, oldest first; the caller has checked its scope."""
    names = photos.photos_of(state.settings.data_dir, incident_id)
    return [photo_url(request, incident_id, name) for name in names]


def step_of(step: TransitionIn, version: int | None) -> handling.Step:
    """The service's step of a transition request (the API's and the console's forms)."""
    return handling.Step(
        status=None if step.action == "whistle" else step.status,
        handling_level=step.handling_level,
        note=step.note,
        assignee=step.assignee,
        department=step.department,
        whistle=tuple(step.departments or ()),
        version=version,
    )


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(body: int | None, if_match: str | None) -> int | None:
    """The version the caller acts on: the body's, or the If-Match ETag's (``*``: any)."""
    if if_match is None or if_match.strip() == "*":
        return body
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()) or len(tag) > 10:
        raise ValidationError(
            f'If-Match {if_match!r}: give the ETag of GET /incidents/{{id}}, e.g. "3"'
        )
    if body is not None and body != int(tag):
        raise ValidationError(f"If-Match says version {tag} but the body says {body}")
    return int(tag)


def create_reported(
    state: AppState,
    incident: IncidentIn,
    tolerance: float,
    actor: Principal,
    answer: Callable[[Connection, int], T],
) -> tuple[T, bool]:
    """Store an incident of a request (this route's or Open311's); returns (answer, created).

    ``answer(conn, id)`` builds the response in the storing transaction (see
    :func:`app.services.incidents.create_incident`). An incident that lands outside
    the actor's area is refused (403) there, so nothing is stored.
    """

    def scoped_answer(conn: Connection, incident_id: int) -> T:
        _, grid = queries.incident_grid(conn, incident_id)
        check_incident(actor, grid, incident_id)
        return answer(conn, incident_id)

    return incident_service.create_incident(
        state.engine,
        incident_service.NewIncident(**incident.model_dump(exclude={"tolerance"})),
        view=state.registry.active,
        taxonomy=state.taxonomy,
        gazetteer=state.gazetteer,
        tolerance=tolerance,
        actor=actor,
        answer=scoped_answer,
    )


def _document(
    state: AppState,
    incident_id: int,
    with_history: bool,
    viewer: Principal | None = None,
    request: Request | None = None,
) -> dict:
    with state.engine.connect() as conn:
        return _record_document(state, conn, incident_id, with_history, viewer, request)


def _record_document(
    state: AppState,
    conn: Connection,
    incident_id: int,
    with_history: bool,
    viewer: Principal | None = None,
    request: Request | None = None,
):
    """The incident as the API shows it; with ``request``, with its photos' URLs."""
    record = queries.incident_record(conn, incident_id)
    if record is None:
        raise NotFoundError(f"no incident {incident_id}")
    check_incident(viewer, record["grid_code"], incident_id)
    history = incident_service.timeline(conn, record) if with_history else None
    doc = incident_service.incident_document(
        record,
        state.registry.active,
        state.taxonomy,
        datetime.now(UTC),
        history,
        handling.handling_document(conn, record),
    )
    if request is not None:
        doc["photos"] = photo_urls(request, state, incident_id)
    return doc
