"""Open311 GeoReport v2 under /open311/v2/: services from the taxonomy, service requests.

A service request is an incident. GeoReport knows two statuses: ``closed`` is
the last step of the closed loop (结案), everything before it is ``open``; the
finer status and the handling level go into ``status_notes`` (and the
``detailed_status`` extension). Extensions: ``bbox``, ``page``/``page_size``,
``lang`` (zh or en service names), and on POST ``crs`` (GCJ-02 from WeChat/Amap
apps, BD-09) and ``external_id`` (idempotent retries). Keys may be sent as the
``api_key`` parameter, as GeoReport clients do, or as the X-API-Key header.
Errors keep gridmap's ``{"detail": ...}`` body.

``media_url`` is the absolute URL of the incident's first photo (the API's photo
route, served to keys and signed-in users within scope, as the request itself). A
``media_url`` posted with a new request is accepted but neither fetched nor stored:
the server never downloads what a client points it at; photos are uploaded with
``POST /incidents/{id}/photos``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import Connection
from starlette.responses import JSONResponse

from app.api.deps import (
    CRS_DESCRIPTION,
    AppState,
    BBoxDep,
    ConnDep,
    CrsName,
    PrincipalDep,
    StateDep,
    check_role,
    parse_interval,
)
from app.api.errors import ERROR_RESPONSES
from app.api.incidents import create_reported, photo_urls
from app.api.schemas import IncidentIn
from app.db import queries
from app.errors import AuthenticationError, NotFoundError
from app.services.registry import GenerationView
from app.services.scope import check_incident
from app.services.security import Principal, authenticate
from gis.errors import ValidationError
from gis.vocabulary import INCIDENT_STATUSES

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"], responses=ERROR_RESPONSES)

SOURCE = "open311"
NOT_CLOSED = tuple(s for s in INCIDENT_STATUSES if s != "closed")
Lang = Annotated[Literal["zh", "en"], Query(description="Language of service names (extension).")]
_NOT_STORED = (
    "Accepted for GeoReport compatibility; not stored (personal data stays with "
    "the reporting channel)."
)
_MEDIA_NOT_FETCHED = (
    "Accepted for GeoReport compatibility; neither fetched nor stored (the server never "
    "downloads what a client points it at). Upload photos with POST /incidents/{id}/photos."
)
ApiKeyParam = Annotated[
    str | None,
    Query(max_length=200, description="API key (GeoReport style); the X-API-Key header works too."),
]


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[dict[str, Any]]


class ServiceRequest(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    detailed_status: str
    service_name: str | None
    service_code: str | None
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime | None
    updated_datetime: datetime | None
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None = Field(
        description="The first photo of the incident (absolute URL; GET it with the same "
        "key), or null."
    )
    grid_code: str | None


class CreatedRequest(BaseModel):
    service_request_id: str
    service_notice: str | None
    account_id: str | None


@router.get("/services.json", response_model=list[Service], summary="Service list")
def services(state: StateDep, lang: Lang = "zh") -> list[dict]:
    """Every item of the category taxonomy as a service, grouped by major class."""
    out = []
    for c in state.taxonomy.by_code.values():
        zh = lang == "zh"
        out.append(
            {
                "service_code": c.code,
                "service_name": c.name_zh if zh else c.name_en,
                "description": f"{c.name_en} / {c.name_zh}; handled within {c.deadline_hours} h",
                "metadata": False,
                "type": "realtime",
                "group": c.major_name_zh if zh else c.major_name_en,
                "keywords": ", ".join((c.name_zh, c.name_en)),
            }
        )
    return out


@router.get(
    "/services/{service_code}.json", response_model=ServiceDefinition, summary="Service definition"
)
def service_definition(
    state: StateDep,
    service_code: Annotated[
        str, Path(max_length=16, description="A service code from services.json.")
    ],
) -> dict:
    """No service takes extra attributes (metadata is false for all)."""
    if service_code not in state.taxonomy.by_code:
        raise NotFoundError(f"no service {service_code!r}; see services.json")
    return {"service_code": service_code, "attributes": []}


async def open311_principal(
    state: StateDep, principal: PrincipalDep, api_key: ApiKeyParam = None
) -> Principal | None:
    """The key from the header, or from the ``api_key`` query parameter."""
    if principal is not None or not api_key:
        return principal
    found = await run_in_threadpool(authenticate, state.engine, api_key)
    if found is None:
        raise AuthenticationError("the api_key is unknown or revoked")
    return found


Open311Principal = Annotated[Principal | None, Depends(open311_principal)]


@router.get("/requests.json", response_model=list[ServiceRequest], summary="Service requests")
def list_requests(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: Open311Principal,
    bbox: BBoxDep,
    service_request_id: Annotated[
        str | None,
        Query(
            pattern=r"^\d{1,18}(,\d{1,18})*$",
            description="Request ids, comma-separated; other filters are then ignored.",
        ),
    ] = None,
    service_code: Annotated[
        str | None,
        Query(pattern=r"^\d{1,16}(,\d{1,16})*$", description="Service codes, comma-separated."),
    ] = None,
    start_date: Annotated[
        str | None, Query(max_length=40, description="Earliest requested_datetime (ISO 8601).")
    ] = None,
    end_date: Annotated[
        str | None, Query(max_length=40, description="Latest requested_datetime (ISO 8601).")
    ] = None,
    status: Annotated[
        str | None,
        Query(pattern=r"^(open|closed)(,(open|closed))?$", description="open, closed or both."),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(
            description="Extension: `true` only requests still open past their deadline "
            "(`expected_datetime`), `false` only the others."
        ),
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page, from 1 (extension).")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=1000, description="Requests per page (extension; at most 1000).")
    ] = 50,
    lang: Lang = "zh",
) -> list[dict]:
    """Service requests, newest first (needs a viewer key; only the key's area)."""
    viewer = check_role(principal, "viewer")
    filters = _request_filter(bbox, service_request_id, service_code, start_date, end_date, status)
    filters = replace(filters, area_prefix=viewer.area, overdue=overdue)
    records = queries.incident_records(conn, filters, page_size, (page - 1) * page_size)
    return [_request(r, state, lang, request) for r in records]


@router.get(
    "/requests/{service_request_id}.json",
    response_model=list[ServiceRequest],
    summary="One service request",
)
def read_request(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: Open311Principal,
    service_request_id: Annotated[str, Path(pattern=r"^\d{1,18}$", description="The request id.")],
    lang: Lang = "zh",
) -> list[dict]:
    """The request, as a one-element list (as GeoReport v2 specifies)."""
    viewer = check_role(principal, "viewer")
    record = queries.incident_record(conn, int(service_request_id))
    if record is None:
        raise NotFoundError(f"no service request {service_request_id}")
    check_incident(viewer, record["grid_code"], service_request_id)
    return [_request(record, state, lang, request)]


@router.post(
    "/requests.json",
    response_model=list[CreatedRequest],
    status_code=201,
    summary="Create a service request",
    responses={
        200: {
            "model": list[CreatedRequest],
            "description": "Already requested (same external_id): the first request.",
        }
    },
)
def create_request(
    state: StateDep,
    principal: Open311Principal,
    service_code: Annotated[str, Form(max_length=16, description="From services.json.")],
    lat: Annotated[float | None, Form(ge=-90, le=90, description="Latitude.")] = None,
    long: Annotated[float | None, Form(ge=-180, le=180, description="Longitude.")] = None,
    address_string: Annotated[
        str | None,
        Form(max_length=500, description=("Address; geocoded when there are no coordinates.")),
    ] = None,
    description: Annotated[
        str | None, Form(max_length=4000, description=("What the problem is."))
    ] = None,
    crs: Annotated[CrsName, Form(description=CRS_DESCRIPTION + " (extension)")] = "wgs84",
    external_id: Annotated[
        str | None,
        Form(
            max_length=128,
            description=(
                "The client's own id; repeating it returns the first request (extension)."
            ),
        ),
    ] = None,
    api_key: Annotated[str | None, Form(max_length=200, description="API key.")] = None,
    email: Annotated[str | None, Form(max_length=200, description=_NOT_STORED)] = None,
    device_id: Annotated[str | None, Form(max_length=200, description=_NOT_STORED)] = None,
    account_id: Annotated[
        str | None, Form(max_length=200, description=("Echoed back in the answer; not stored."))
    ] = None,
    first_name: Annotated[str | None, Form(max_length=200, description=_NOT_STORED)] = None,
    last_name: Annotated[str | None, Form(max_length=200, description=_NOT_STORED)] = None,
    phone: Annotated[str | None, Form(max_length=50, description=_NOT_STORED)] = None,
    media_url: Annotated[str | None, Form(max_length=1000, description=_MEDIA_NOT_FETCHED)] = None,
) -> JSONResponse:
    """A new request (an incident from source `open311`), located and assigned on write.

    Needs an operator key (header or `api_key` field). Give `lat` and `long`, or
    an `address_string`.
    """
    if principal is None and api_key:
        principal = authenticate(state.engine, api_key)
        if principal is None:
            raise AuthenticationError("the api_key is unknown or revoked")
    actor = check_role(principal, "operator")
    if (lat is None) != (long is None) or (lat is None and not address_string):
        raise ValidationError("give both lat and long, or an address_string")
    try:
        incident = IncidentIn(
            source=SOURCE,
            external_id=external_id or uuid.uuid4().hex,
            category=service_code,
            description=description,
            address=address_string,
            lon=long,
            lat=lat,
            crs=crs,
        )
    except pydantic.ValidationError as exc:
        raise ValidationError(
            "invalid service request: "
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None

    def answer(conn: Connection, incident_id: int) -> list[dict]:
        record = queries.incident_record(conn, incident_id)
        assert record is not None
        created = {
            "service_request_id": str(incident_id),
            "account_id": account_id,
            "service_notice": _notice(record, state.registry.active),
        }
        return [CreatedRequest.model_validate(created).model_dump(mode="json")]

    body, created = create_reported(state, incident, 0.0, actor, answer)
    # A repeated external_id returns the first request, as GET would: 200, not 201.
    return JSONResponse(body, status_code=201 if created else 200)


def _request_filter(bbox, ids, codes, start, end, status) -> queries.IncidentFilter:
    if ids:
        return queries.IncidentFilter(ids=tuple(int(i) for i in ids.split(",")))
    window_start = parse_interval(start).start if start else None
    window_end = parse_interval(end).end if end else None
    wanted = set((status or "").split(",")) - {""}
    statuses: tuple[str, ...] = ()
    if wanted == {"open"}:
        statuses = NOT_CLOSED
    elif wanted == {"closed"}:
        statuses = ("closed",)
    return queries.IncidentFilter(
        bbox=bbox,
        start=window_start,
        end=window_end,
        category=tuple(codes.split(",")) if codes else (),
        status=statuses,
    )


def _request(record: dict, state: AppState, lang: str, request: Request) -> dict:
    """A service request of an incident the caller may see (its scope is checked)."""
    category = state.taxonomy.by_code.get(record["category"] or "")
    steps = [
        record[c]
        for c in (
            "reported_at",
            "registered_at",
            "dispatched_at",
            "handled_at",
            "verified_at",
            "closed_at",
        )
    ]
    view = state.registry.active
    return {
        "service_request_id": str(record["id"]),
        "status": "closed" if record["status"] == "closed" else "open",
        "status_notes": _status_notes(record),
        "detailed_status": record["status"],
        "service_name": (category.name_zh if lang == "zh" else category.name_en)
        if category
        else None,
        "service_code": record["category"],
        "description": record["description"],
        "agency_responsible": _agency(record, view),
        "service_notice": None,
        "requested_datetime": record["reported_at"],
        "updated_datetime": max((s for s in steps if s is not None), default=None),
        "expected_datetime": record["deadline_at"],  # the stored deadline
        "address": record["address"],
        "address_id": None,
        "zipcode": None,
        "lat": record["lat"],
        "long": record["lon"],
        "media_url": next(iter(photo_urls(request, state, record["id"])), None),
        "grid_code": record["grid_code"],
    }


def _status_notes(record: dict) -> str:
    notes = record["status"]
    level = record["handling_level"]
    if level:
        notes += f"; handled at {level} level" + (" (escalated)" if level != "grid" else "")
    return notes


def _agency(record: dict, view: GenerationView | None) -> str | None:
    column = {"community": "community_code", "street": "street_code"}.get(
        record["handling_level"] or "", "grid_code"
    )
    code = record[column]
    if code is None:
        return None
    name = view.areas[code][0] if view is not None and code in view.areas else None
    return f"{name} ({code})" if name else code


def _notice(record: dict, view: GenerationView | None) -> str:
    if record["location_status"] == "unlocated":
        return f"received; not located yet: {record['unlocated_reason']}"
    agency = _agency(record, view)
    return (
        f"received; assigned to {agency}"
        if agency
        else "received; the location is outside every grid and will be routed by hand"
    )
