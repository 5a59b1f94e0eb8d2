"""Rows of ``incident_assignment``: one per incident and generation, written by COPY.

Re-assigning a generation replaces that generation's rows only; the rows of
every other generation are the assignment history and are never touched.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, Table, exists, func, select
from sqlalchemy.dialects import postgresql

from app.db.bulk import copy_binary, read_binary
from app.db.models import Incident, IncidentAssignment
from gis.assign import ASSIGNED_LEVELS

INCIDENT = cast(Table, Incident.__table__)
ASSIGNMENT = cast(Table, IncidentAssignment.__table__)
#: The assignment's area codes, from the street down.
CODE_COLUMNS: list[str] = list(ASSIGNED_LEVELS.values())
#: Types of the columns an assignment COPY fills (binary COPY needs them; see app.db.bulk).
ASSIGNMENT_TYPES = {
    "generation_id": "integer",
    "incident_id": "bigint",
    **dict.fromkeys(CODE_COLUMNS, "character varying"),
    "assign_status": "character varying",
    "distance_m": "double precision",
}


def clear_assignments(conn: Connection, generation_id: int) -> int:
    return conn.execute(
        ASSIGNMENT.delete().where(ASSIGNMENT.c.generation_id == generation_id)
    ).rowcount


def _to_assign(generation_id: int, only_unassigned: bool) -> list[ColumnElement]:
    where: list[ColumnElement] = [INCIDENT.c.location.isnot(None)]
    if only_unassigned:
        assigned = exists().where(
            ASSIGNMENT.c.incident_id == INCIDENT.c.id,
            ASSIGNMENT.c.generation_id == generation_id,
        )
        where.append(~assigned)
    return where


def count_to_assign(conn: Connection, generation_id: int, only_unassigned: bool) -> int:
    """Located incidents (without a row under ``generation_id``, if ``only_unassigned``)."""
    return conn.execute(
        select(func.count())
        .select_from(INCIDENT)
        .where(*_to_assign(generation_id, only_unassigned))
    ).scalar_one()


def locations_after(
    conn: Connection, generation_id: int, only_unassigned: bool, after_id: int, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, lon, lat) of the next ``limit`` incidents to assign with an id above ``after_id``.

    Keyset paging on id: OFFSET would rescan the table for every chunk.
    """
    query = (
        select(INCIDENT.c.id, func.ST_X(INCIDENT.c.location), func.ST_Y(INCIDENT.c.location))
        .where(*_to_assign(generation_id, only_unassigned), INCIDENT.c.id > after_id)
        .order_by(INCIDENT.c.id)
        .limit(limit)
    )
    # binary COPY out: three fixed-width columns, read by one frombuffer (no row objects)
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    rows = read_binary(conn, sql, (">i8", ">f8", ">f8"))
    return (
        rows["f0"].astype(np.int64),
        rows["f1"].astype(np.float64),
        rows["f2"].astype(np.float64),
    )


def copy_assignments(
    conn: Connection, incident_ids: np.ndarray, result: pd.DataFrame, generation_id: int
) -> int:
    """COPY assignment rows (``HierarchyIndex.assign_xy`` output) for one generation."""
    rows = result[[*CODE_COLUMNS, "assign_status", "distance_m"]].copy()
    rows.insert(0, "incident_id", np.asarray(incident_ids, dtype=np.int64))
    rows.insert(0, "generation_id", generation_id)
    return copy_binary(conn, "incident_assignment", rows, ASSIGNMENT_TYPES)
