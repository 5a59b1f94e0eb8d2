"""The statistics report's SQL: incidents per area of one level, counted in one pass each.

Every count is of incidents reported in [start, end) and assigned, under one
generation, to an area of the level asked for. Deadlines and major classes come
from the taxonomy as VALUES lists (the service passes them), so the report
follows whatever taxonomy the deployment uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    and_,
    cast,
    column,
    extract,
    func,
    literal,
    or_,
    select,
    values,
)

from app.db.assignments import ASSIGNMENT, INCIDENT
from app.db.queries import code_in_scope
from app.db.repo import AREA
from app.db.staff import STAFF
from gis.vocabulary import HANDLING_LEVELS, LOCAL_TIMEZONE, OPEN_STATUSES

#: Per-area totals :func:`area_totals` returns, besides ``code``.
TOTAL_COLUMNS = (
    "received",
    *(f"handled_{level}" for level in HANDLING_LEVELS),
    "overdue",
    "on_time",
    "median_close_hours",
)
#: What a row may stand for besides an area level: a staff member of the roster (the
#: incident's assignee) or a month of the report time (local, ``YYYY-MM``).
WORKER, MONTH = "worker", "month"


def _code_column(level: str) -> Any:
    """The grouping key of a row: an area's code, a staff id (as text) or a month."""
    if level == WORKER:
        return cast(INCIDENT.c.assignee_staff_id, String)
    if level == MONTH:
        local = func.timezone(LOCAL_TIMEZONE, INCIDENT.c.reported_at)
        return func.to_char(local, "YYYY-MM")
    return ASSIGNMENT.c[f"{level}_code"]


def _in_window(
    generation_id: int,
    start: datetime | None,
    end: datetime | None,
    area: str | None = None,
    level: str | None = None,
) -> Any:
    """Under the generation, reported in [start, end) (an open end when None), in the
    grids of scope ``area`` (None: everywhere); per worker, assigned to a staff member
    of the generation's roster (the rows a worker report has)."""
    where = [ASSIGNMENT.c.generation_id == generation_id]
    if level == WORKER:
        roster = select(STAFF.c.id).where(STAFF.c.generation_id == generation_id)
        where.append(INCIDENT.c.assignee_staff_id.in_(roster.scalar_subquery()))
    if area is not None:
        where.append(code_in_scope(ASSIGNMENT.c.grid_code, area))
    if start is not None:
        where.append(INCIDENT.c.reported_at >= start)
    if end is not None:
        where.append(INCIDENT.c.reported_at < end)
    return and_(*where)


def _assigned() -> Any:
    return INCIDENT.join(ASSIGNMENT, ASSIGNMENT.c.incident_id == INCIDENT.c.id)


def deadline_values(deadlines: tuple[Sequence[str], Sequence[int]]) -> Any:
    """The taxonomy's (category code, deadline hours) as a VALUES table ``deadline``."""
    codes, hours = deadlines
    return values(column("code", String), column("hours", Integer), name="deadline").data(
        list(zip(codes, hours, strict=True)) or [("", 0)]
    )


def area_totals(
    conn: Connection,
    generation_id: int,
    level: str,
    start: datetime | None,
    end: datetime | None,
    deadlines: tuple[Sequence[str], Sequence[int]],
    now: datetime,
    area: str | None = None,
) -> pd.DataFrame:
    """Per area code: received, handled at each level, overdue, handled on time and
    the median hours from report to close; a last row with code None holds the
    median of all of them (a median does not add up; the counts do).

    Overdue: still open past the category's deadline at ``now``, or handled after
    it. On time: handled by the deadline. Uncategorised incidents have no deadline.
    """
    table = deadline_values(deadlines)
    due = INCIDENT.c.reported_at + func.make_interval(0, 0, 0, 0, table.c.hours)
    unresolved = INCIDENT.c.status.in_(OPEN_STATUSES)
    handled = INCIDENT.c.handled_at
    code = _code_column(level)
    query = (
        select(
            code.label("code"),
            func.count().label("received"),
            *[
                func.count().filter(INCIDENT.c.handling_level == lv).label(f"handled_{lv}")
                for lv in HANDLING_LEVELS
            ],
            func.count()
            .filter((unresolved & (due < literal(now))) | (handled > due))
            .label("overdue"),
            func.count().filter(handled <= due).label("on_time"),
            _median_hours(INCIDENT.c.closed_at - INCIDENT.c.reported_at).label(
                "median_close_hours"
            ),
        )
        .select_from(_assigned().outerjoin(table, table.c.code == INCIDENT.c.category))
        .where(_in_window(generation_id, start, end, area, level), code.isnot(None))
        .group_by(func.rollup(code))
    )
    rows = conn.execute(query).mappings().all()
    return pd.DataFrame(rows, columns=["code", *TOTAL_COLUMNS])


def _median_hours(duration: Any) -> Any:
    """The median of an interval in hours (NULLs — not closed yet — left out)."""
    hours = extract("epoch", duration) / 3600.0
    return func.percentile_cont(0.5).within_group(cast(hours, Float))


def counts_by_source(
    conn: Connection,
    generation_id: int,
    level: str,
    start: datetime | None,
    end: datetime | None,
    area: str | None = None,
) -> pd.DataFrame:
    """Rows (code, source, count)."""
    code = _code_column(level)
    query = (
        select(code.label("code"), INCIDENT.c.source, func.count().label("count"))
        .select_from(_assigned())
        .where(_in_window(generation_id, start, end, area, level), code.isnot(None))
        .group_by(code, INCIDENT.c.source)
    )
    return pd.DataFrame(conn.execute(query).all(), columns=["code", "source", "count"])


def counts_by_class(
    conn: Connection,
    generation_id: int,
    level: str,
    start: datetime | None,
    end: datetime | None,
    majors: tuple[Sequence[str], Sequence[str]],
    area: str | None = None,
) -> pd.DataFrame:
    """Rows (code, major_code, count); ``majors`` is (category codes, their major class).
    An incident without a known category counts under major_code None."""
    codes, classes = majors
    table = values(column("code", String), column("major", String), name="major").data(
        list(zip(codes, classes, strict=True)) or [("", "")]
    )
    code = _code_column(level)
    query = (
        select(code.label("code"), table.c.major, func.count().label("count"))
        .select_from(_assigned().outerjoin(table, table.c.code == INCIDENT.c.category))
        .where(_in_window(generation_id, start, end, area, level), code.isnot(None))
        .group_by(code, table.c.major)
    )
    return pd.DataFrame(conn.execute(query).all(), columns=["code", "major_code", "count"])


def area_names(
    conn: Connection, generation_id: int, level: str, area: str | None = None
) -> pd.DataFrame:
    """Code and name of every area of ``level`` in the generation, by code: the report's rows,
    areas without incidents included; with scope ``area``, the areas inside it or
    containing it (a street's own row in a street-level report)."""
    where = [
        AREA.c.level == level,
        AREA.c.generation_low <= generation_id,
        AREA.c.generation_high >= generation_id,
    ]
    if area is not None:
        where.append(or_(code_in_scope(AREA.c.code, area), literal(area).startswith(AREA.c.code)))
    query = select(AREA.c.code, AREA.c.name).where(*where).order_by(AREA.c.code)
    return pd.DataFrame(conn.execute(query).all(), columns=["code", "name"])


def worker_names(conn: Connection, generation_id: int, area: str | None = None) -> pd.DataFrame:
    """Code (staff id as text), name and grid of every staff member of the generation's
    roster, in scope ``area``: the rows of a worker report, those without incidents included."""
    where = [STAFF.c.generation_id == generation_id]
    if area is not None:
        where.append(code_in_scope(STAFF.c.area_code, area))
    query = (
        select(
            cast(STAFF.c.id, String).label("code"),
            STAFF.c.name,
            STAFF.c.area_code,
        )
        .where(*where)
        .order_by(STAFF.c.area_code, STAFF.c.id)
    )
    return pd.DataFrame(conn.execute(query).all(), columns=["code", "name", "area_code"])
