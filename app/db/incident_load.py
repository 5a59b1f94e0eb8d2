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

from collections.abc import Callable

import pandas as pd
from sqlalchemy import Connection, text

from app.db.assignments import ASSIGNMENT_TYPES, CODE_COLUMNS
from app.db.bulk import copy_binary, table_types
from app.db.incidents import INCIDENT_COPY_COLUMNS

#: The assignment columns staged beside each incident (``assign_status`` NULL: none).
STAGED_ASSIGNMENT_COLUMNS = ("generation_id", *CODE_COLUMNS, "assign_status", "distance_m")
_STAGE = "incident_load"
_ASSIGNED = ", ".join(STAGED_ASSIGNMENT_COLUMNS)


def store_chunk(
    conn: Connection, rows: pd.DataFrame, progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Insert the rows whose ``(source, external_id)`` is new, and their assignments.

    ``rows`` has :data:`app.db.incidents.INCIDENT_COPY_COLUMNS` (geometries as
    EWKB) and :data:`STAGED_ASSIGNMENT_COLUMNS`. Returns (incidents inserted,
    assignments inserted). A deadline is the category's in the taxonomy version
    the row was classified under, as for every other way in.
    """
    columns = [*INCIDENT_COPY_COLUMNS, *STAGED_ASSIGNMENT_COLUMNS]
    copied = ", ".join(INCIDENT_COPY_COLUMNS)
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
    selected = ", ".join(f"s.{c}" for c in INCIDENT_COPY_COLUMNS)
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
