"""What the operations console shows: the queue of a user's scope and one incident with
exactly the actions the closed-loop rules allow that user.

Nothing here decides a rule. The queue is the API's list query
(``queries.incident_records`` with the same :class:`~app.db.queries.IncidentFilter`),
sorted by deadline; an action is offered when :func:`app.services.handling.offered`
(the planning :func:`~app.services.handling.apply_step` runs) accepts it, and a
posted action is applied by ``apply_step`` as the API's transitions are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from app.db import departments as department_rows
from app.db import kept_counts, queries, repo
from app.errors import IllegalTransitionError, NotFoundError, PermissionDeniedError
from app.services import handling
from app.services import incidents as incident_service
from app.services.handling import Step
from app.services.scope import check_area, check_incident
from app.services.security import Principal
from app.services.workflow import plan_transition, plan_whistle
from gis.errors import ValidationError
from gis.vocabulary import HANDLING_LEVELS, INCIDENT_STATUSES

__all__ = [
    "Action",
    "QueueFilter",
    "incident_actions",
    "queue",
    "refresh_queue_counts",
    "scoped_prefix",
]

#: Incidents on one queue page.
QUEUE_PAGE = 50


# -- the queue ---------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters, as the form sends them (empty: no filter)."""

    status: tuple[str, ...] = ()
    overdue: bool | None = None
    category: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    area: str | None = None
    assignee: int | None = None
    department: str | None = None


def scoped_prefix(actor: Principal, area: str | None) -> str | None:
    """The area prefix to list: the chosen ``area`` within the actor's scope.

    An area inside the scope narrows the list; one containing the scope (its street,
    the district) lists the scope; another branch is refused (403), as the area pages are.
    """
    if area is None:
        return actor.area
    check_area(actor, area)
    if actor.area is None or area.startswith(actor.area):
        return area
    return actor.area


def refresh_queue_counts(conn: Connection) -> None:
    """Bring the kept counts per status of the active generation up to date before
    :func:`queue` reads them (in a transaction of its own, which the caller commits)."""
    active = repo.active_generation(conn)
    kept_counts.refresh(conn, active.id if active else None)


def queue(conn: Connection, actor: Principal, chosen: QueueFilter, page: int = 0) -> dict[str, Any]:
    """One page of the actor's queue (nearest deadline first), the counts per status of
    the same filters, and how many match."""
    f = queries.IncidentFilter(
        category=chosen.category,
        status=chosen.status,
        source=chosen.source,
        overdue=chosen.overdue,
        assignee=chosen.assignee,
        department=chosen.department,
        area_prefix=scoped_prefix(actor, chosen.area),
    )
    counts = queries.incident_status_counts(conn, f)
    # the counts carry every filter but the status: the statuses chosen add up to the list
    matched = sum(counts[s] for s in (chosen.status or INCIDENT_STATUSES))
    rows = queries.incident_records(conn, f, QUEUE_PAGE, page * QUEUE_PAGE, order="deadline")
    total = sum(counts[s] for s in INCIDENT_STATUSES)
    return {"rows": rows, "counts": counts, "matched": matched, "total": total, "page": page}


# -- the actions of one incident -----------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """One action the page offers: what the form posts and what it asks for."""

    key: str  # register, dispatch, reassign, handle, report_in, verify, send_back, close,
    #           escalate, whistle
    status: str | None  # the status the form posts (None for a whistle)
    level: str | None = None  # the handling level an escalation goes to
    department: str | None = None  # the whistled department reporting in
    asks: tuple[str, ...] = field(default=())  # "handler", "level", "departments"


def _candidates(record: dict, whistled: dict[str, bool], actor: Principal) -> list[tuple]:
    """(key, step, asks) of every action worth asking the rules about."""
    status, level = record["status"], record["handling_level"]
    found: list[tuple] = [
        ("register", Step(status="registered"), ("level",)),
        ("dispatch", Step(status="dispatched"), ("handler", "level")),
        ("verify", Step(status="verified"), ()),
        ("close", Step(status="closed"), ()),
    ]
    if whistled:  # 报到: each waiting department reports in by handling it
        waiting = handling.waiting_departments(whistled)
        mine = [actor.department] if actor.department in waiting else waiting
        found += [("report_in", Step(status="handled", department=d), ()) for d in mine]
    else:
        found.append(("handle", Step(status="handled"), ()))
    # without a level the grid handles it (the default): escalating starts at the community
    higher = HANDLING_LEVELS[HANDLING_LEVELS.index(level or "grid") + 1 :]
    found += [("escalate", Step(status=status, handling_level=up), ()) for up in higher]
    return found


_KEY_OF_KIND = {"reopen": "send_back"}
#: The order of the page's actions: the next step of the loop first.
_ACTION_ORDER = (
    "register",
    "dispatch",
    "handle",
    "report_in",
    "verify",
    "send_back",
    "close",
    "escalate",
    "reassign",
    "whistle",
)


def incident_actions(conn: Connection, record: dict, actor: Principal) -> list[Action]:
    """The actions the closed-loop rules allow ``actor`` on the incident now (none for a
    viewer: transitions need the operator role, as in the API)."""
    if not actor.allows("operator"):
        return []
    whistled = {
        w["department_code"]: w["reported_at"] is not None
        for w in department_rows.whistles(conn, record["id"])
    }
    actions: list[Action] = []
    for key, step, asks in _candidates(record, whistled, actor):
        change = handling.offered(conn, record, step, whistled, actor)
        if change is None:
            continue
        actions.append(
            Action(
                _KEY_OF_KIND.get(change.kind, key),
                step.status,
                level=step.handling_level if key in ("escalate", "register") else None,
                department=step.department,
                asks=() if change.kind == "reopen" else asks,
            )
        )
    actions += _redirect_and_whistle(record, whistled, actor)
    return sorted(actions, key=lambda a: _ACTION_ORDER.index(a.key))


def _redirect_and_whistle(
    record: dict, whistled: dict[str, bool], actor: Principal
) -> list[Action]:
    """Dispatch again to someone else, and 吹哨: the rules of ``workflow`` on the record
    (their handler and department checks run when the form names one); neither is a
    department user's."""
    status, level = record["status"], record["handling_level"]
    found: list[Action] = []
    if not _allowed(handling.check_department_user, actor, Step(), record, whistled):
        return found
    if status == "dispatched" and _allowed(
        plan_transition, status, level, "dispatched", redirect=True
    ):
        found.append(Action("reassign", "dispatched", asks=("handler",)))
    if _allowed(plan_whistle, status, level, [], whistled):
        found.append(Action("whistle", None, asks=("departments",)))
    return found


def _allowed(plan, *args, **kwargs) -> bool:
    try:
        plan(*args, **kwargs)
    except (ValidationError, IllegalTransitionError, PermissionDeniedError):
        return False
    return True


def incident_page(conn: Connection, incident_id: int, actor: Principal) -> dict[str, Any]:
    """The record, its history, who handles it, the actions and their choices (the staff
    of its grid, the departments), and its grid's outline for the sketch."""
    record = queries.incident_record(conn, incident_id)
    if record is None:
        raise NotFoundError(f"no incident {incident_id}")
    check_incident(actor, record["grid_code"], incident_id)
    actions = incident_actions(conn, record, actor)
    asks = {a for action in actions for a in action.asks}
    grid = (
        queries.area_record(conn, record["generation_id"], record["grid_code"])
        if record["grid_code"] and record["generation_id"]
        else None
    )
    return {
        "record": record,
        "history": incident_service.timeline(conn, record),
        "handling": handling.handling_document(conn, record),
        "actions": actions,
        "assignees": handling.eligible_assignees(conn, incident_id) if "handler" in asks else [],
        "departments": department_rows.list_departments(conn)
        if asks & {"handler", "departments"}
        else [],
        "grid": grid,
    }
