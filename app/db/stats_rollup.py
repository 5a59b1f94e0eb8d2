"""The store of the assessment's monthly rollup (migration 0012): per generation and local
month, that month's incidents counted once — its *cells* — kept as Arrow IPC streams.

A month holds three tables (see :class:`MonthCells`): the cells, counts per (street,
community, grid, assignee) and per source and major class; every closed incident's
hours to close, sorted, with its cell; every open incident's deadline with its cell.
``app.db.stats`` counts them (the same SQL as the live count) and adds them up with
``gis.figures``.

Why one Arrow stream per month and not one table row per cell: the figures need
every cell and every hour of the window — no index narrows a year of a city. On the
city of a million incidents with a year of history, eleven months at the worker level
are 363,000 cells and 883,000 closed incidents: PostgreSQL summing the cells per worker
took 0.3–0.5 s and ``percentile_cont`` over the unnested hours 1.2 s; reading the eleven
streams takes ~0.06 s and NumPy adds them up and takes the exact medians in ~0.2 s.
The streams are stored out of line without pglz (``STORAGE EXTERNAL``): decompressing
them would cost more than the bytes save.

Freshness. Writers mark, readers recount. Triggers on ``incident`` and
``incident_assignment`` add marks to ``assessment_stale`` in the writer's own
transaction: (generation, month), NULL meaning every generation or month, or an id
range of incidents whose months are to be found (migration 0012). A reader uses a
stored month only if, in its snapshot, it was counted under the same taxonomy terms
(``terms``, a fingerprint) and no mark may name it; whoever recounts holds an advisory
lock, consumes every mark (dropping the months they name) and counts what it needs,
in one transaction. So two readers never count twice (the second waits, then finds
the months stored), and a change committed while a month was being counted leaves
its mark behind: the month is counted again on the next read, never used stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
from sqlalchemy import Connection, text

from gis.vocabulary import LOCAL_TIMEZONE

#: pg_advisory_xact_lock key of whoever recounts months ("gmap" in ASCII).
REFRESH_LOCK = 0x676D6170


@dataclass(frozen=True)
class MonthCells:
    """One month's count: ``cells`` (codes, ``staff_id``, counts), ``closed`` (``cell``,
    ``hours``, sorted by hours) and ``open`` (``cell``, ``due``)."""

    cells: pa.Table
    closed: pa.Table
    open: pa.Table


def lock(conn: Connection) -> None:
    """Wait for any other recount to commit; held until this transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK})


def consume_marks(conn: Connection) -> None:
    """Take every mark and drop the stored months it names (under :func:`lock`). A mark of
    an id range (a large statement's assignments) names the months of those incidents."""
    conn.execute(
        text(
            "WITH marks AS (DELETE FROM assessment_stale"
            " RETURNING generation_id, month, first_id, last_id),"
            " named AS ("
            "  SELECT generation_id, month FROM marks WHERE first_id IS NULL"
            "  UNION SELECT DISTINCT m.generation_id,"
            "   date_trunc('month', timezone(:zone, i.reported_at))::date"
            "  FROM marks m JOIN incident i ON i.id BETWEEN m.first_id AND m.last_id"
            "  WHERE i.reported_at IS NOT NULL)"
            " DELETE FROM assessment_month s USING named n"
            " WHERE (n.generation_id IS NULL OR n.generation_id = s.generation_id)"
            " AND (n.month IS NULL OR n.month = s.month)"
        ),
        {"zone": LOCAL_TIMEZONE},
    )


# A mark without a month — every month, or an id range not yet resolved — makes every
# month of its generation unusable until a recount has consumed it.
_USABLE = (
    "FROM assessment_month m WHERE m.generation_id = %(g)s AND m.month = ANY(%(months)s) "
    "AND m.terms = %(terms)s AND NOT EXISTS (SELECT 1 FROM assessment_stale s "
    "WHERE (s.generation_id IS NULL OR s.generation_id = m.generation_id) "
    "AND (s.month IS NULL OR s.month = m.month))"
)


def usable(conn: Connection, generation_id: int, months: Sequence[date], terms: str) -> set[date]:
    """Those of ``months`` stored under ``terms`` and not marked since, as this transaction
    sees them."""
    rows = _rows(conn, f"SELECT m.month {_USABLE}", generation_id, months, terms)
    return {month for (month,) in rows}


def load(
    conn: Connection, generation_id: int, months: Sequence[date], terms: str
) -> dict[date, MonthCells]:
    """The usable months among ``months`` (see :func:`usable`) with their cells."""
    rows = _rows(
        conn, f"SELECT m.month, m.cells, m.closed, m.open {_USABLE}", generation_id, months, terms
    )
    return {month: MonthCells(*(_table(b) for b in blobs)) for month, *blobs in rows}


def store(
    conn: Connection, generation_id: int, terms: str, months: Iterable[tuple[date, MonthCells]]
) -> None:
    """Keep each month's cells, replacing what was stored for it."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        for month, counted in months:
            cursor.execute(
                "INSERT INTO assessment_month "
                "(generation_id, month, terms, cells, closed, open, computed_at) "
                "VALUES (%s, %s, %s, %b, %b, %b, now()) "
                "ON CONFLICT (generation_id, month) DO UPDATE SET terms = excluded.terms, "
                "cells = excluded.cells, closed = excluded.closed, open = excluded.open, "
                "computed_at = excluded.computed_at",
                (
                    generation_id,
                    month,
                    terms,
                    _stream(counted.cells),
                    _stream(counted.closed),
                    _stream(counted.open),
                ),
            )


def _rows(
    conn: Connection, query: str, generation_id: int, months: Sequence[date], terms: str
) -> list[tuple]:
    """Rows in binary (a bytea arrives as its bytes, not as hex to decode), on the
    SQLAlchemy connection's own transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor(binary=True) as cursor:
        cursor.execute(query, {"g": generation_id, "months": list(months), "terms": terms})
        return cursor.fetchall()


def _stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _table(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
