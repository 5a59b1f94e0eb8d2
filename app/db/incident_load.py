"""A chunk of an incident file import stored in one statement: what is new, and its assignments.

:func:`app.db.incidents.insert_new_incidents` returns the new ids to Python so
that a caller can act on each (the API logs one status step). A file import
only needs to know how many were new: here the chunk's rows and their
assignments are COPYed (binary) into one staging table, and one statement
inserts the new incidents and, joined on ``(source, external_id)``, the
assignments of exactly those — no id travels to Python and back. A million
rows spent ~10 s in that round trip (RETURNING rows, a dict, a lookup per row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
from sqlalchemy import Connection, text

from app.db.assignments import ASSIGNMENT_TYPES, CODE_COLUMNS
from app.db.bulk import copy_binary, table_types
from app.db.incidents import INCIDENT_COPY_COLUMNS

#: The assignment columns staged beside each incident (``assign_status`` NULL: none).
STAGED_ASSIGNMENT_COLUMNS = ("generation_id", *CODE_COLUMNS, "assign_status", "distance_m")
#: Who handles it: not in a file, NULL unless a ``before_insert`` step names someone.
HANDLER_COLUMNS = ("assignee_staff_id", "assignee_name")
_STAGE = "incident_load"
_ASSIGNED = ", ".join(STAGED_ASSIGNMENT_COLUMNS)
#: ``before_insert(conn, stage)``: run on a chunk's staging table (its rows as cleaned,
#: assigned and COPYed, :data:`HANDLER_COLUMNS` empty) before they are inserted.
StageStep = Callable[[Connection, str], None]


def store_chunk(
    conn: Connection,
    rows: pd.DataFrame,
    progress: Callable[[int], None] | None = None,
    before_insert: StageStep | None = None,
) -> tuple[int, int]:
    """Insert the rows whose ``(source, external_id)`` is new, and their assignments.

    ``rows`` has :data:`app.db.incidents.INCIDENT_COPY_COLUMNS` (geometries as
    EWKB) and :data:`STAGED_ASSIGNMENT_COLUMNS`. Returns (incidents inserted,
    assignments inserted). A deadline is the category's in the taxonomy version
    the row was classified under, as for every other way in. ``before_insert``
    may fill :data:`HANDLER_COLUMNS` of the staged rows.
    """
    columns = [*INCIDENT_COPY_COLUMNS, *STAGED_ASSIGNMENT_COLUMNS]
    copied = ", ".join((*INCIDENT_COPY_COLUMNS, *HANDLER_COLUMNS))
    conn.execute(
        text(
            f"CREATE TEMP TABLE {_STAGE} ON COMMIT DROP AS "
            f"SELECT {copied} FROM incident WITH NO DATA"
        )
    )
    conn.execute(
        text(
            f"ALTER TABLE {_STAGE} "
            + ", ".join(f"ADD COLUMN {c} {ASSIGNMENT_TYPES[c]}" for c in STAGED_ASSIGNMENT_COLUMNS)
        )
    )
    types = {**table_types(conn, _STAGE), **ASSIGNMENT_TYPES}
    copy_binary(conn, _STAGE, rows[columns], types, progress=progress)
    if before_insert is not None:
        before_insert(conn, _STAGE)
    selected = ", ".join(f"s.{c}" for c in (*INCIDENT_COPY_COLUMNS, *HANDLER_COLUMNS))
    inserted, assigned = conn.execute(
        text(
            f"WITH new AS ("
            f" INSERT INTO incident ({copied}, deadline_at)"
            f" SELECT {selected}, s.reported_at + make_interval(0, 0, 0, 0, t.deadline_hours)"
            f" FROM {_STAGE} s LEFT JOIN taxonomy_item t"
            f" ON t.version_id = s.taxonomy_version AND t.code = s.category"
            f" ORDER BY s.external_id"
            f" ON CONFLICT (source, external_id) DO NOTHING"
            f" RETURNING id, source, external_id"
            f"), assigned AS ("
            f" INSERT INTO incident_assignment (incident_id, {_ASSIGNED})"
            f" SELECT n.id, {', '.join(f's.{c}' for c in STAGED_ASSIGNMENT_COLUMNS)}"
            f" FROM new n JOIN {_STAGE} s USING (source, external_id)"
            f" WHERE s.assign_status IS NOT NULL"
            f" RETURNING 1"
            f") SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM assigned)"
        )
    ).one()
    # Dropped now, not at commit: the next chunk of the same transaction creates it again.
    conn.execute(text(f"DROP TABLE {_STAGE}"))
    return int(inserted), int(assigned)


def name_grid_workers(conn: Connection, stage: str, statuses: Sequence[str]) -> int:
    """Name a grid worker of its grid as who handled each staged row in ``statuses``;
    returns how many were named.

    The worker is one of the grid's ``grid_worker`` staff in the roster of the row's
    generation, the grid's workers taking turns by the second of the report time;
    a row outside every grid, or in a grid without a worker, keeps none.
    """
    return conn.execute(
        text(
            "WITH worker AS ("
            " SELECT id, name, generation_id, area_code,"
            "  row_number() OVER (PARTITION BY generation_id, area_code ORDER BY id) - 1 AS turn,"
            "  count(*) OVER (PARTITION BY generation_id, area_code) AS workers"
            " FROM staff WHERE role = 'grid_worker'"
            f"  AND generation_id IN (SELECT DISTINCT generation_id FROM {stage})"
            f") UPDATE {stage} s SET assignee_staff_id = w.id, assignee_name = w.name"
            " FROM worker w"
            " WHERE w.generation_id = s.generation_id AND w.area_code = s.grid_code"
            "  AND s.status = ANY(:statuses)"
            "  AND w.turn = floor(extract(epoch FROM s.reported_at))::bigint % w.workers"
        ),
        {"statuses": list(statuses)},
    ).rowcount
