"""Departments, the whistles (吹哨) that call them to an incident, and the incident's handler.

Also the versioned write of an incident: ``UPDATE … WHERE id = :id AND version = :v``,
so of two actions taken on the same version only one changes the row (migration 0009).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.db.models import (
    ApiKey,
    AppUser,
    Department,
    Generation,
    Incident,
    IncidentStatusLog,
    IncidentWhistle,
    Staff,
)

DEPARTMENT = cast(Table, Department.__table__)
WHISTLE = cast(Table, IncidentWhistle.__table__)
INCIDENT = cast(Table, Incident.__table__)
STAFF = cast(Table, Staff.__table__)
LOG = cast(Table, IncidentStatusLog.__table__)
KEY = cast(Table, ApiKey.__table__)
USER = cast(Table, AppUser.__table__)
#: What a department row holds, as the API and the CLI list it.
DEPARTMENT_COLUMNS = ("code", "name", "contact")


# -- departments ---------------------------------------------------------------------------
def list_departments(conn: Connection) -> list[dict]:
    query = select(*[DEPARTMENT.c[c] for c in DEPARTMENT_COLUMNS]).order_by(DEPARTMENT.c.code)
    return [dict(r) for r in conn.execute(query).mappings()]


def department_names(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    """Code → name of those of ``codes`` that exist."""
    rows = conn.execute(
        select(DEPARTMENT.c.code, DEPARTMENT.c.name).where(DEPARTMENT.c.code.in_(list(codes)))
    )
    return {code: name for code, name in rows}


def existing_codes(conn: Connection) -> set[str]:
    return set(conn.execute(select(DEPARTMENT.c.code)).scalars())


def upsert_departments(conn: Connection, rows: Sequence[dict]) -> int:
    """Insert the departments, or update name and contact of those already stored."""
    if not rows:
        return 0
    statement = pg_insert(DEPARTMENT).values(
        [{c: row.get(c) for c in DEPARTMENT_COLUMNS} for row in rows]
    )
    statement = statement.on_conflict_do_update(
        index_elements=["code"],
        set_={
            "name": statement.excluded.name,
            "contact": statement.excluded.contact,
            "updated_at": func.now(),
        },
    )
    return conn.execute(statement).rowcount


# -- the handler: staff of a grid ----------------------------------------------------------
def staff_member(conn: Connection, staff_id: int) -> dict | None:
    """A roster row with whether its generation is the active one."""
    row = (
        conn.execute(
            select(
                STAFF.c.id,
                STAFF.c.name,
                STAFF.c.role,
                STAFF.c.area_code,
                Generation.is_active.label("active"),
            )
            .join(Generation, Generation.id == STAFF.c.generation_id)
            .where(STAFF.c.id == staff_id)
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def grid_staff(conn: Connection, grid_code: str) -> list[dict]:
    """Staff of the active generation serving ``grid_code`` or one of its micro-grids."""
    rows = conn.execute(
        select(STAFF.c.id, STAFF.c.name, STAFF.c.role, STAFF.c.area_code)
        .join(Generation, and_(Generation.id == STAFF.c.generation_id, Generation.is_active))
        .where(STAFF.c.area_code.startswith(grid_code, autoescape=True))
        .order_by(STAFF.c.area_code, STAFF.c.id)
    )
    return [dict(r._mapping) for r in rows]


# -- whistles ------------------------------------------------------------------------------
def whistles(conn: Connection, incident_id: int) -> list[dict]:
    """The departments whistled for an incident, in the order they were called."""
    rows = conn.execute(
        select(
            WHISTLE.c.department_code,
            DEPARTMENT.c.name,
            WHISTLE.c.whistled_at,
            WHISTLE.c.reported_at,
            WHISTLE.c.report_note,
        )
        .join(DEPARTMENT, DEPARTMENT.c.code == WHISTLE.c.department_code)
        .where(WHISTLE.c.incident_id == incident_id)
        .order_by(WHISTLE.c.whistled_at, WHISTLE.c.department_code)
    )
    return [dict(r._mapping) for r in rows]


def add_whistles(conn: Connection, incident_id: int, codes: Sequence[str]) -> None:
    conn.execute(
        insert(WHISTLE), [{"incident_id": incident_id, "department_code": c} for c in codes]
    )


def mark_reported(conn: Connection, incident_id: int, code: str, note: str | None) -> None:
    """报到: the department reported in by handling the incident."""
    conn.execute(
        update(WHISTLE)
        .where(WHISTLE.c.incident_id == incident_id, WHISTLE.c.department_code == code)
        .values(reported_at=func.now(), report_note=note)
    )


def reset_reports(conn: Connection, incident_id: int) -> None:
    """A failed verification: every whistled department has to handle it again."""
    conn.execute(
        update(WHISTLE)
        .where(WHISTLE.c.incident_id == incident_id)
        .values(reported_at=None, report_note=None)
    )


# -- the versioned write -------------------------------------------------------------------
def update_if_version(
    conn: Connection,
    incident_id: int,
    version: int,
    values: dict[str, Any],
    stamped: str | None = None,
) -> int | None:
    """Set ``values`` (and ``stamped`` to now) and raise the version, only if it is still
    ``version``; returns the new version, or None when another action came first.

    Under READ COMMITTED a concurrent UPDATE of the same row waits for the first to
    commit, then re-checks the WHERE against the new row: the version no longer
    matches, so exactly one of them writes.
    """
    if stamped is not None:
        values = {**values, stamped: func.now()}
    return conn.execute(
        update(INCIDENT)
        .where(INCIDENT.c.id == incident_id, INCIDENT.c.version == version)
        .values(**values, version=INCIDENT.c.version + 1)
        .returning(INCIDENT.c.version)
    ).scalar_one_or_none()


def log_step(conn: Connection, incident_id: int, step: dict[str, Any]) -> None:
    """One row of ``incident_status_log`` (columns as named in ``step``)."""
    conn.execute(insert(LOG).values(incident_id=incident_id, **step))


def last_step(conn: Connection, incident_id: int) -> dict | None:
    """The latest logged step with who took it (a user's name or a key's name/prefix)."""
    actor = func.coalesce(USER.c.username, KEY.c.name, KEY.c.prefix)
    row = (
        conn.execute(
            select(
                LOG.c.at,
                LOG.c.action,
                LOG.c.from_status,
                LOG.c.to_status,
                actor.label("by"),
            )
            .select_from(
                LOG.outerjoin(KEY, KEY.c.id == LOG.c.api_key_id).outerjoin(
                    USER, USER.c.id == LOG.c.user_id
                )
            )
            .where(LOG.c.incident_id == incident_id)
            .order_by(LOG.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)
