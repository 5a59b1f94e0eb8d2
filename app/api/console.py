"""The operations console: ``GET /console`` (the queue), ``GET|POST /console/incidents/{id}``
(one incident and its actions), ``GET|POST /console/report`` (a report from the field with
photos) and ``GET /console/incidents/{id}/photos/{name}``.

Server-rendered pages (``app/pages/templates/console_*.html``) for signed-in users only:
anyone else is sent to ``/login?next=…`` (303). Every form post carries the session's
CSRF token (checked by ``app.api.session.cookie_session``), and every action goes
through the API's own path: the form becomes a :class:`~app.api.schemas.TransitionIn`
(the same validation), then :func:`app.services.handling.apply_step` (the same rules,
scope check and optimistic concurrency). What the page offers comes from
:mod:`app.services.console`, which asks those rules. Refusals are pages, never a 500:
a stale version says who changed the incident and what it is now (409).
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import pydantic
from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection
from starlette.datastructures import FormData, UploadFile

from app.api.deps import AppState, StateDep, checked_tolerance
from app.api.errors import status_for
from app.api.incidents import create_reported, step_of
from app.api.schemas import IncidentIn, TransitionIn
from app.api.session import cookie_session
from app.errors import PermissionDeniedError, StaleVersionError
from app.pages import render
from app.pages.sketch import grid_sketch
from app.services import console, photos
from app.services import incidents as incident_service
from app.services.departments import list_departments
from app.services.handling import apply_step
from app.services.scope import check_incident
from app.services.security import Principal
from gis.errors import GridmapError, ValidationError
from gis.vocabulary import HANDLING_LEVELS, INCIDENT_STATUSES, LOCAL_TZ

__all__ = ["router"]

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_STATUSES = "|".join(INCIDENT_STATUSES)
#: The queue's parameters: name → the pattern of a value (empty: no filter).
_QUEUE_PARAMS = {
    "status": re.compile(rf"^({_STATUSES})(,({_STATUSES}))*$"),
    "overdue": re.compile(r"^(true|false)$"),
    "category": re.compile(r"^\d{1,16}(,\d{1,16})*$"),
    "source": re.compile(r"^[a-z][a-z0-9_]{1,63}(,[a-z][a-z0-9_]{1,63})*$"),
    "area": re.compile(r"^\d{1,32}$"),
    "assignee": re.compile(r"^[1-9]\d{0,17}$"),
    "department": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
    "page": re.compile(r"^\d{1,6}$"),
}


#: Chinese first, with English: what the pages call statuses, levels, actions and steps.
LABELS = {
    "status": {
        "reported": "上报 Reported",
        "registered": "立案 Registered",
        "dispatched": "派遣 Dispatched",
        "handled": "处置 Handled",
        "verified": "核查 Verified",
        "closed": "结案 Closed",
    },
    "level": {"grid": "网格 Grid", "community": "社区 Community", "street": "街道 Street"},
    "action": {
        "register": "立案 Register",
        "dispatch": "派遣 Dispatch",
        "reassign": "改派 Reassign",
        "handle": "处置 Handle",
        "report_in": "报到处置 Report in",
        "verify": "核查通过 Verify",
        "send_back": "核查不通过，退回 Send back",
        "close": "结案 Close",
        "escalate": "上报至 Escalate to",
        "whistle": "吹哨 Whistle departments",
    },
    "kind": {
        "advance": "",
        "escalate": "上报 Escalated",
        "reopen": "退回 Sent back",
        "reassign": "改派 Reassigned",
        "whistle": "吹哨 Whistled",
        "report_in": "报到 Reported in",
        "archive": "档案 Archived",
    },
}


def _when(moment: datetime | None) -> str:
    """A time as officials read it: China Standard Time, to the minute."""
    return "—" if moment is None else moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


# -- who is asking -------------------------------------------------------------------------
def _root(request: Request) -> str:
    return request.scope.get("root_path", "")


def _to_login(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # after signing in, come back to the page, not the post
        here = request.url.path
    return RedirectResponse(f"{_root(request)}/login?next={quote(here, safe='/')}", status_code=303)


def page_response(
    request: Request, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A console page: ``template`` with what every console page shows, never cached."""
    html = render(
        template,
        root=_root(request),
        user=getattr(request.state, "principal", None),
        session_csrf=getattr(request.state, "csrf_token", None),
        labels=LABELS,
        when=_when,
        statuses=INCIDENT_STATUSES,
        levels=HANDLING_LEVELS,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def refusal_page(request: Request, error: GridmapError) -> HTMLResponse:
    """The page saying why ``error`` refused the request, with its HTTP status."""
    return page_response(
        request, "console_message.html", status=status_for(error), message=str(error)
    )


async def signed_in(request: Request, state: AppState) -> Principal | Response:
    """The signed-in user, or the response to send instead (sign in; a refused form)."""
    try:
        user = await cookie_session(request, state.engine, state.api)
    except PermissionDeniedError as error:  # a post without its CSRF token
        request.state.principal = None
        return refusal_page(request, error)
    request.state.principal = user  # the audit of writes reads it
    return _to_login(request) if user is None else user


# -- the queue -----------------------------------------------------------------------------
def _queue_params(request: Request) -> dict[str, str]:
    """The queue's non-empty parameters, each checked (a bad one is a 422 page)."""
    chosen = {}
    for name, pattern in _QUEUE_PARAMS.items():
        value = request.query_params.get(name, "").strip()
        if not value:
            continue
        if not pattern.match(value):
            raise ValidationError(f"筛选条件无效 / the filter {name}={value[:40]!r} is not valid")
        chosen[name] = value
    return chosen


def _own_department(chosen: dict[str, str], user: Principal) -> dict[str, str]:
    """A department's user works what was dispatched or whistled (吹哨) to the department:
    its queue shows those unless another department is chosen."""
    if user.department and "department" not in chosen:
        return {**chosen, "department": user.department}
    return chosen


def _queue_filter(chosen: dict[str, str]) -> console.QueueFilter:
    def split(name: str) -> tuple[str, ...]:
        return tuple(chosen[name].split(",")) if name in chosen else ()

    return console.QueueFilter(
        status=split("status"),
        overdue=None if "overdue" not in chosen else chosen["overdue"] == "true",
        category=split("category"),
        source=split("source"),
        area=chosen.get("area"),
        assignee=int(chosen["assignee"]) if "assignee" in chosen else None,
        department=chosen.get("department"),
    )


@router.get("", response_class=HTMLResponse)
async def queue_page(request: Request, state: StateDep) -> Response:
    """Incidents in the user's scope, nearest deadline first, with counts per status."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user
    try:
        chosen = _own_department(_queue_params(request), user)
        page = int(chosen.pop("page", "0"))
        data = await run_in_threadpool(_read_queue, state, user, _queue_filter(chosen), page)
    except GridmapError as error:
        return refusal_page(request, error)

    def link(**change: str | None) -> str:
        params = {**chosen, **change}
        return "?" + urlencode({k: v for k, v in params.items() if v})

    return page_response(request, "console_queue.html", chosen=chosen, link=link, **data)


def _read_queue(
    state: AppState, user: Principal, chosen: console.QueueFilter, page: int
) -> dict[str, Any]:
    with state.engine.begin() as conn:
        console.refresh_queue_counts(conn)
    with state.engine.connect() as conn:
        data = console.queue(conn, user, chosen, page)
        data["departments"] = list_departments(conn)
    now = datetime.now(UTC)
    for row in data["rows"]:  # overdue and the category's name as the API documents them
        doc = incident_service.incident_document(row, None, state.taxonomy, now)
        row.update(overdue=doc["overdue"], category_name=doc["category_name"])
    data["categories"] = state.taxonomy.by_code
    data["page_size"] = console.QUEUE_PAGE
    return data


# -- one incident --------------------------------------------------------------------------
def _read_incident(state: AppState, incident_id: int, user: Principal) -> dict[str, Any]:
    with state.engine.connect() as conn:
        view = console.incident_page(conn, incident_id, user)
    record = view["record"]
    view["doc"] = incident_service.incident_document(
        record, state.registry.active, state.taxonomy, datetime.now(UTC)
    )
    view["photos"] = photos.photos_of(state.settings.data_dir, incident_id)
    grid = view["grid"]
    view["sketch"] = grid_sketch(grid["geometry"] if grid else None, record["lon"], record["lat"])
    return view


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_page(request: Request, state: StateDep, incident_id: IncidentId) -> Response:
    """Details, the sketch, the timeline and the actions this user may take."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user
    return await _incident_response(request, state, incident_id, user)


async def _incident_response(
    request: Request,
    state: AppState,
    incident_id: int,
    user: Principal,
    status: int = 200,
    error: str | None = None,
    stale: dict | None = None,
) -> Response:
    try:
        view = await run_in_threadpool(_read_incident, state, incident_id, user)
    except GridmapError as refused:
        return refusal_page(request, refused)
    return page_response(
        request, "console_incident.html", status=status, error=error, stale=stale, **view
    )


@router.post("/incidents/{incident_id}", response_class=HTMLResponse)
async def act(request: Request, state: StateDep, incident_id: IncidentId) -> Response:
    """Apply the posted action as the API does; back to the page (303) or the refusal."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user
    form = await request.form()
    try:
        step = _transition(form)
        if not user.allows("operator"):
            raise PermissionDeniedError(
                f"办理需要操作员角色 / acting on incidents needs the operator role; "
                f"{user.prefix} has the {user.role} role"
            )
        await run_in_threadpool(
            apply_step,
            state.engine,
            incident_id,
            step_of(step, step.version),
            user,
            check_incident,
        )
    except StaleVersionError as error:
        return await _incident_response(
            request, state, incident_id, user, 409, str(error), _stale_view(error.current)
        )
    except GridmapError as error:
        return await _incident_response(
            request, state, incident_id, user, status_for(error), str(error)
        )
    return RedirectResponse(
        f"{_root(request)}/console/incidents/{incident_id}#gm-timeline", status_code=303
    )


def _stale_view(current: dict | None) -> dict | None:
    """What the refusal of a stale action shows: who acted last, what they did (the step's
    kind, or the status it moved to) and when, in local time."""
    last = (current or {}).get("last_step")
    if current is None or not last:
        return current
    kind = LABELS["kind"].get(last["action"] or "") or LABELS["status"].get(last["to_status"], "")
    at = _when(datetime.fromisoformat(last["at"])) if last["at"] else "—"
    return {**current, "last_step": {**last, "what": kind, "at": at}}


def _transition(form: FormData) -> TransitionIn:
    """The form as the API's request body (one validation for both)."""

    def one(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    handler = one("handler") or ""
    body: dict[str, Any] = {
        "action": "whistle" if one("action") == "whistle" else "step",
        "status": one("status"),
        "handling_level": one("handling_level"),
        "note": one("note"),
        "version": one("version"),
        "assignee": handler.removeprefix("staff:") if handler.startswith("staff:") else None,
        "department": handler.removeprefix("dept:") if handler.startswith("dept:") else None,
    }
    if one("department"):  # a whistled department reporting in
        body["department"] = one("department")
    departments = [d for d in form.getlist("departments") if isinstance(d, str) and d]
    if body["action"] == "whistle":
        body["departments"] = departments or None
    if body["version"] is None:
        raise ValidationError("表单缺少版本 / the form has no version: reload the page")
    try:
        return TransitionIn.model_validate({k: v for k, v in body.items() if v is not None})
    except pydantic.ValidationError as error:
        raise ValidationError(f"表单无效 / the form is not valid: {_problems(error)}") from None


def _problems(error: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()
    )


# -- photos and the report from the field ---------------------------------------------------
@router.get("/incidents/{incident_id}/photos/{name}")
async def photo(
    request: Request,
    state: StateDep,
    incident_id: IncidentId,
    name: Annotated[str, Path(max_length=40)],
) -> Response:
    """A photo of an incident, only for signed-in users whose scope holds it."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user

    def find() -> FileResponse:
        path, media = photos.served(state.engine, state.settings.data_dir, user, incident_id, name)
        return FileResponse(path, media_type=media, headers={"Cache-Control": "private"})

    try:
        return await run_in_threadpool(find)
    except GridmapError as error:
        return refusal_page(request, error)


@router.get("/report", response_class=HTMLResponse)
async def report_form(request: Request, state: StateDep) -> Response:
    """The phone-sized form of a report from the field."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user
    return _report_page(request, state)


def _report_page(
    request: Request, state: AppState, status: int = 200, error: str | None = None, **given
) -> HTMLResponse:
    return page_response(
        request,
        "console_report.html",
        status=status,
        error=error,
        given=given,
        categories=state.taxonomy.by_code,
        max_photos=photos.MAX_PHOTOS,
        max_mb=photos.MAX_PHOTO_BYTES // (1024 * 1024),
    )


@router.post("/report", response_class=HTMLResponse)
async def report(request: Request, state: StateDep) -> Response:
    """Store the incident as ``POST /incidents`` does (located and assigned to its grid on
    write, refused outside the user's scope), with its photos; then its page."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user
    form = await request.form()
    given = {
        k: v.strip()
        for k in ("category", "description", "address", "lon", "lat")
        if isinstance(v := form.get(k), str)
    }
    try:
        if not user.allows("operator"):
            raise PermissionDeniedError(
                f"上报需要操作员角色 / reporting needs the operator role; {user.prefix} has "
                f"the {user.role} role"
            )
        sent = [
            (upload.filename or "photo", await upload.read(photos.MAX_PHOTO_BYTES + 1))
            for upload in form.getlist("photos")
            if isinstance(upload, UploadFile) and upload.filename
        ]
        checked = photos.check(sent)
        incident = _report_body(given)
        incident_id = await run_in_threadpool(_store_report, state, incident, user, checked)
    except GridmapError as error:
        return _report_page(request, state, status_for(error), str(error), **given)
    return RedirectResponse(f"{_root(request)}/console/incidents/{incident_id}", status_code=303)


def _report_body(given: dict[str, str]) -> IncidentIn:
    """The form as the API's ``IncidentIn``: a patrol report in WGS84 (the browser's GPS)."""
    body = {
        "source": "patrol",
        "external_id": f"console-{uuid.uuid4().hex}",
        "category": given.get("category") or None,
        "description": given.get("description") or None,
        "address": given.get("address") or None,
        "lon": _degrees(given.get("lon"), "lon 经度"),
        "lat": _degrees(given.get("lat"), "lat 纬度"),
        "crs": "wgs84",
    }
    try:
        return IncidentIn.model_validate({k: v for k, v in body.items() if v is not None})
    except pydantic.ValidationError as error:
        raise ValidationError(f"表单无效 / the form is not valid: {_problems(error)}") from None


def _degrees(text: str | None, name: str) -> float | None:
    """A typed coordinate as a number (the API's schema checks its range)."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{name}: {text[:30]!r} is not a number of degrees") from None
    if not math.isfinite(value):
        raise ValidationError(f"{name}: {text[:30]!r} is not a number of degrees")
    return value


def _store_report(
    state: AppState, incident: IncidentIn, user: Principal, checked: list[tuple[str, bytes]]
) -> int:
    tolerance = checked_tolerance(incident.tolerance, state.api.max_tolerance_m)

    def answer(conn: Connection, incident_id: int) -> int:
        # inside the storing transaction: photos that cannot be written store nothing
        photos.store(state.settings.data_dir, incident_id, checked)
        return incident_id

    incident_id, _ = create_reported(state, incident, tolerance, user, answer)
    return incident_id
