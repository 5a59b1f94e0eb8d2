"""One step of an incident through the closed loop, with who handles it and 吹哨报到.

A step names the incident's ``version`` it was decided on. The write is
``UPDATE … WHERE id = :id AND version = :v`` (``app.db.departments``), so of two
people acting on the same version only one succeeds; the other gets a
:class:`~app.errors.StaleVersionError` saying what the incident is now. A step
without a version is checked against the version read at the start of the
request: it still cannot overwrite an action that came in meanwhile.

The rules are those of :mod:`app.services.workflow`; here they meet the data:
the roster of the incident's grid (an assignee must serve it), the departments
(a named one must exist) and the whistles of the incident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from app.db import departments as rows
from app.db import queries
from app.errors import (
    IllegalTransitionError,
    NotFoundError,
    PermissionDeniedError,
    StaleVersionError,
)
from app.services.security import Principal
from app.services.workflow import (
    Change,
    check_handler,
    plan_report,
    plan_transition,
    plan_whistle,
    waiting_departments,
)
from gis.errors import ValidationError
from gis.vocabulary import STEP_TIMESTAMP

#: How many of a grid's staff an error message names.
_NAMED_STAFF = 10


@dataclass(frozen=True)
class Step:
    """What a caller asks: a status (or ``whistle``), and who handles it."""

    status: str | None = None
    handling_level: str | None = None
    note: str | None = None
    assignee: int | None = None  # staff.id of the incident's grid (active roster)
    department: str | None = None  # dispatch to it, or the whistled department reporting in
    whistle: tuple[str, ...] = ()  # 吹哨: departments the street calls in
    version: int | None = None  # the incident version the caller saw


def apply_step(
    engine: Engine,
    incident_id: int,
    step: Step,
    actor: Principal,
    check_scope: Callable[[Principal, str | None, int], None] | None = None,
) -> int:
    """Apply ``step`` and log it in one transaction; returns the incident's new version.

    ``check_scope(actor, grid_code, id)`` refuses an incident outside the actor's
    area before anything is written.
    """
    with engine.begin() as conn:
        current = queries.incident_record(conn, incident_id)
        if current is None:
            raise NotFoundError(f"no incident {incident_id}")
        if check_scope is not None:
            check_scope(actor, current["grid_code"], incident_id)
        if step.version is not None and step.version != current["version"]:
            raise stale(conn, incident_id, step.version)
        whistled = {
            w["department_code"]: w["reported_at"] is not None
            for w in rows.whistles(conn, incident_id)
        }
        change, values, departments = _plan(conn, current, step, whistled, actor)
        stamped = STEP_TIMESTAMP[change.status] if change.status != current["status"] else None
        values.update({"status": change.status, "handling_level": change.handling_level})
        values.update({column: None for column in change.clears})
        version = rows.update_if_version(
            conn, incident_id, current["version"], values, stamped=stamped
        )
        if version is None:  # another action committed between our read and our write
            raise stale(conn, incident_id, current["version"])
        _record_handling(conn, incident_id, change, departments, step.note)
        rows.log_step(
            conn,
            incident_id,
            {
                "from_status": current["status"],
                "to_status": change.status,
                "from_level": current["handling_level"],
                "to_level": change.handling_level,
                "note": step.note,
                "api_key_id": actor.key_id,
                "user_id": actor.user_id,
                "action": change.kind,
                "departments": departments or None,
                "assignee_name": values.get("assignee_name"),
            },
        )
        return version


def _plan(
    conn: Connection,
    current: dict,
    step: Step,
    whistled: dict[str, bool],
    actor: Principal,
) -> tuple[Change, dict[str, Any], list[str]]:
    """(the change, the handler columns to set, the departments the step names)."""
    status, level = current["status"], current["handling_level"]
    check_department_user(actor, step, current, whistled)
    if step.whistle:
        codes = _existing_departments(conn, step.whistle)
        return plan_whistle(status, level, codes, whistled), {}, codes
    if step.status == "handled" and (whistled or step.department):
        if whistled or step.department != current["department_code"]:
            department = _reporting_department(step, actor, whistled)
            return plan_report(status, level, department, whistled), {}, [department]
        # the department it was dispatched to handles it: a plain step
        change = plan_transition(status, level, "handled", step.handling_level)
        return change, {}, [current["department_code"]]
    assert step.status is not None
    check_handler(step.status, step.assignee, step.department)
    redirect = step.assignee is not None or step.department is not None
    change = plan_transition(status, level, step.status, step.handling_level, redirect=redirect)
    if step.assignee is not None:
        return change, _assignee(conn, current, step.assignee), []
    if step.department is not None:
        (code,) = _existing_departments(conn, [step.department])
        return change, _to_department(code), [code]
    return change, {}, []


def check_department_user(
    actor: Principal, step: Step, current: dict, whistled: dict[str, bool]
) -> None:
    """A department's user acts for its department only: it reports in (报到) when the
    department was whistled, or handles what was dispatched to the department. Registering,
    dispatching, escalating, whistling, verifying and closing are the grid's, the
    community's and the street's."""
    own = actor.department
    if own is None:
        return
    mine = own in whistled or current["department_code"] == own
    if step.status == "handled" and not step.whistle and mine:
        return
    raise PermissionDeniedError(
        f"部门用户只能为本部门报到处置 / a user of department {own} reports in for it or "
        "handles what was dispatched to it; registering, dispatching, escalating, whistling, "
        "verifying and closing are the grid's, the community's and the street's"
    )


def offered(
    conn: Connection, current: dict, step: Step, whistled: dict[str, bool], actor: Principal
) -> Change | None:
    """The change ``step`` would make now, or None when the rules refuse it.

    The same planning as :func:`apply_step` without the write: the console offers an
    action exactly when this accepts it, so the page and the API share one set of rules.
    """
    try:
        return _plan(conn, current, step, whistled, actor)[0]
    except (IllegalTransitionError, ValidationError, PermissionDeniedError):
        return None


def _reporting_department(step: Step, actor: Principal, whistled: dict[str, bool]) -> str:
    """The department reporting in: named, or the signed-in user's own."""
    if actor.department and step.department and step.department != actor.department:
        raise PermissionDeniedError(
            f"you report for department {actor.department}, not {step.department}"
        )
    department = step.department or actor.department
    if department is None:
        raise ValidationError(
            "departments were whistled for this incident: each reports in (报到) by handling "
            "it; give the reporting department (department) — still waiting for "
            + ", ".join(waiting_departments(whistled))
        )
    return department


def _assignee(conn: Connection, current: dict, staff_id: int) -> dict[str, Any]:
    """The handler columns for a staff member, who must serve the incident's grid."""
    grid = current["grid_code"]
    if grid is None:
        raise ValidationError(
            f"incident {current['id']} lies in no grid, so it has no grid staff: dispatch it "
            "to a department instead"
        )
    member = rows.staff_member(conn, staff_id)
    if member is None or not member["active"] or not member["area_code"].startswith(grid):
        staff = rows.grid_staff(conn, grid)
        named = ", ".join(f"{s['id']} {s['name']} ({s['role']})" for s in staff[:_NAMED_STAFF])
        raise ValidationError(
            f"assignee {staff_id} is not on the roster of grid {grid} (the incident's grid); "
            + (f"its staff: {named}" if staff else "the grid has no staff on the roster")
        )
    return {
        "assignee_staff_id": member["id"],
        "assignee_name": member["name"],
        "department_code": None,
    }


def _to_department(code: str) -> dict[str, Any]:
    return {"assignee_staff_id": None, "assignee_name": None, "department_code": code}


def _existing_departments(conn: Connection, codes: tuple[str, ...] | list[str]) -> list[str]:
    wanted = list(dict.fromkeys(codes))
    known = rows.department_names(conn, wanted)
    unknown = [code for code in wanted if code not in known]
    if unknown:
        raise ValidationError(
            f"unknown department {', '.join(unknown)}; see GET /departments "
            "(imported with gridmap departments import)"
        )
    return wanted


def _record_handling(
    conn: Connection, incident_id: int, change: Change, departments: list[str], note: str | None
) -> None:
    if change.kind == "whistle":
        rows.add_whistles(conn, incident_id, departments)
    elif change.kind == "report_in":
        rows.mark_reported(conn, incident_id, departments[0], note)
    elif change.kind == "reopen":
        rows.reset_reports(conn, incident_id)


def stale(conn: Connection, incident_id: int, version: int) -> StaleVersionError:
    """The refusal of an action on ``version``, saying what the incident is now."""
    now = queries.incident_record(conn, incident_id)
    assert now is not None
    last = rows.last_step(conn, incident_id)
    current = {
        "status": now["status"],
        "handling_level": now["handling_level"],
        "version": now["version"],
        "assignee_name": now["assignee_name"],
        "department": now["department_code"],
        "last_step": None
        if last is None
        else {**last, "at": last["at"].isoformat() if last["at"] else None},
    }
    by = f" by {last['by']}" if last and last["by"] else ""
    when = f" at {last['at']:%Y-%m-%d %H:%M:%S %z}" if last and last["at"] else ""
    return StaleVersionError(
        f"事件已被他人更新 / incident {incident_id} changed since version {version}: it is now "
        f"{now['status']} (version {now['version']}), last changed{by}{when}; reload it and "
        "decide again",
        current,
    )


def handling_document(conn: Connection, record: dict) -> dict[str, Any]:
    """Who handles an incident, as ``schemas.IncidentOut`` shows it: the assignee, the
    department it was dispatched to, and the departments whistled with their reports."""
    code = record["department_code"]
    names = rows.department_names(conn, [code]) if code else {}
    return {
        "assignee": None
        if record["assignee_name"] is None
        else {"staff_id": record["assignee_staff_id"], "name": record["assignee_name"]},
        "department": None if code is None else {"code": code, "name": names.get(code)},
        "whistled": [
            {
                "department": {"code": w["department_code"], "name": w["name"]},
                "whistled_at": w["whistled_at"],
                "reported_at": w["reported_at"],
                "report_note": w["report_note"],
            }
            for w in rows.whistles(conn, record["id"])
        ],
    }


def eligible_assignees(conn: Connection, incident_id: int) -> list[dict]:
    """Who a dispatch may name: the staff (id, name, role, area) of the incident's grid
    and its micro-grids on the active roster; no phone numbers."""
    found, grid = queries.incident_grid(conn, incident_id)
    if not found:
        raise NotFoundError(f"no incident {incident_id}")
    return [] if grid is None else rows.grid_staff(conn, grid)
