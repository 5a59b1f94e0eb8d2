"""The console's counts per status, kept (migration 0014): read as sums of a few rows
instead of counting the incidents of a scope on every page.

Triggers append what each statement changed to ``incident_count`` as rows of +n and -n
(``delta``), or, for a large statement, a mark asking for a generation to be counted
again. A reader first calls :func:`refresh`, in a transaction of its own that commits:
whatever a mark names is counted again in one pass, and once a key has more than
:data:`FOLD_AFTER` delta rows they are folded into one row per (grid, status). Both take
an advisory lock and are done by one statement each, whose single snapshot both deletes
the rows it replaces and counts (or sums) them: a row a writer commits meanwhile is
neither deleted nor counted, and stays for the next read. A mark committed after
:func:`refresh` makes :func:`kept_status_counts` answer None, and the caller counts live.

A key is the totals (every incident, ``generation_id`` NULL) or one generation's grids.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from app.db.models import incident_count

#: pg_advisory_xact_lock key of whoever counts again or folds ("gmqc" in ASCII).
COUNT_LOCK = 0x676D7163
#: Delta rows a key may gather before a reader folds them.
FOLD_AFTER = 1_000

_STATE = (
    "SELECT coalesce(bool_or(status IS NULL), false), count(*) FILTER (WHERE delta)"
    " FROM incident_count WHERE {key}"
)
_RECOUNT_TOTALS = (
    "WITH gone AS (DELETE FROM incident_count WHERE generation_id IS NULL)"
    " INSERT INTO incident_count (status, n, delta)"
    " SELECT status, count(*), false FROM incident GROUP BY status"
)
_RECOUNT_GENERATION = (
    "WITH gone AS (DELETE FROM incident_count WHERE generation_id = :g)"
    " INSERT INTO incident_count (generation_id, grid_code, status, n, delta)"
    " SELECT :g, a.grid_code, i.status, count(*), false"
    " FROM incident_assignment a JOIN incident i ON i.id = a.incident_id"
    " WHERE a.generation_id = :g AND a.grid_code IS NOT NULL GROUP BY a.grid_code, i.status"
)
# marks (status NULL) are never folded: one committed meanwhile must survive
_FOLD = (
    "WITH gone AS (DELETE FROM incident_count WHERE {key} AND status IS NOT NULL"
    " RETURNING grid_code, status, n)"
    " INSERT INTO incident_count (generation_id, grid_code, status, n, delta)"
    " SELECT {g}, grid_code, status, sum(n), false FROM gone"
    " GROUP BY grid_code, status HAVING sum(n) <> 0"
)
# generations are deleted with their assignments, whose trigger may append rows after
_VANISHED = (
    "DELETE FROM incident_count c WHERE c.generation_id IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM generation g WHERE g.id = c.generation_id)"
)


def refresh(conn: Connection, generation_id: int | None) -> None:
    """Bring the totals and the grids of ``generation_id`` (if any) up to date: count again
    what is marked, fold what has gathered. ``conn``: a READ COMMITTED transaction that
    the caller commits (the lock is held until then)."""
    for key in (None, generation_id) if generation_id is not None else (None,):
        if _state(conn, key) == (False, False):
            continue
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": COUNT_LOCK})
        marked, full = _state(conn, key)  # another reader may have done it meanwhile
        if marked:
            recount = _RECOUNT_TOTALS if key is None else _RECOUNT_GENERATION
            conn.execute(text(recount), {"g": key})
        elif full:
            where, g = _key(key)
            conn.execute(text(_FOLD.format(key=where, g=g)), {"g": key})
            if key is None:
                conn.execute(text(_VANISHED))


def _key(generation_id: int | None) -> tuple[str, str]:
    if generation_id is None:
        return "generation_id IS NULL", "NULL::integer"
    return "generation_id = :g", ":g"


def _state(conn: Connection, generation_id: int | None) -> tuple[bool, bool]:
    """(whether a mark asks for the key to be counted again, whether it is due a fold)."""
    where, _ = _key(generation_id)
    marked, deltas = conn.execute(text(_STATE.format(key=where)), {"g": generation_id}).one()
    return bool(marked), deltas > FOLD_AFTER


def kept_status_counts(
    conn: Connection, generation_id: ColumnElement, scope: ColumnElement | None
) -> dict[str, int] | None:
    """Incidents per status: every incident (``scope`` None) or those assigned to the grids
    of generation ``generation_id`` that ``scope`` (a condition on ``grid_code``) selects.
    None when a mark says the key is being changed in bulk: count live then."""
    c = incident_count.c
    key: ColumnElement[bool]
    if scope is None:
        key = c.generation_id.is_(None)
    else:  # a mark names no grid
        key = and_(c.generation_id == generation_id, or_(scope, c.status.is_(None)))
    rows = conn.execute(select(c.status, func.sum(c.n)).where(key).group_by(c.status)).all()
    if any(status is None for status, _ in rows):
        return None
    return {status: int(n) for status, n in rows}
