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
are 363,000 cells and 883,000 closed incidents: PostgreSQL summing the cells (as rows)
per worker took 0.3–0.5 s and ``percentile_cont`` over the unnested hours 1.2 s;
reading the eleven months' streams (40 MB) takes ~0.1 s, and NumPy adds them up and
takes the exact medians in ~0.2 s (``gis.figures``). The streams are stored out of line
and not compressed (``STORAGE EXTERNAL``): zstd made them 3.6 times smaller, but
decoding them (0.08 s) cost about what the smaller transfer saved.

Freshness. Writers mark, readers recount. Triggers on ``incident`` and
``incident_assignment`` add marks to ``assessment_stale`` in the writer's own
transaction (migration 0012): the cells of one grid of a (generation, month); a whole
(generation, month), NULL meaning every generation or month; or an id range of
incidents whose months are to be found. A reader uses a stored month only if, in its
snapshot, it was counted under the same taxonomy terms (``terms``, a fingerprint) and no
mark may name it. Whoever recounts holds an advisory lock and, in one transaction,
takes the marks: a whole month's drops it (it is counted whole again when needed); a
grid's, of a month it needs, has that grid counted again and patched into the stored
month (:meth:`MonthCells.patched`: a transition costs ~0.07 s, a whole month of 75,000
incidents 1.5–2 s). So two readers never count twice (the second waits, then finds the
months stored), and a change committed while a month was being counted leaves its mark
behind: the month is counted again on the next read, never used stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from gis.vocabulary import LOCAL_TIMEZONE

#: pg_advisory_xact_lock key of whoever recounts months ("gmap" in ASCII).
REFRESH_LOCK = 0x676D6170


#: The cells' columns that are not counts.
KEYS = ("street_code", "community_code", "grid_code", "staff_id")
#: How a mark names the cells of incidents outside every grid (migration 0012).
NO_GRID = ""


@dataclass(frozen=True)
class MonthCells:
    """One month's count: ``cells`` (codes, ``staff_id``, counts), ``closed`` (``cell``,
    ``hours``, sorted by hours) and ``open`` (``cell``, ``due``)."""

    cells: pa.Table
    closed: pa.Table
    open: pa.Table

    def where(self, keep: np.ndarray) -> MonthCells:
        """The cells where ``keep``, renumbered, with their hours and deadlines."""
        renumber = (np.cumsum(keep) - 1).astype(np.int32)

        def values(table: pa.Table) -> pa.Table:
            kept = table.filter(pa.array(keep[table.column("cell").to_numpy()]))
            cells = renumber[kept.column("cell").to_numpy()]
            return kept.set_column(0, "cell", pa.array(cells))

        return MonthCells(
            cells=self.cells.filter(pa.array(keep)),
            closed=values(self.closed),
            open=values(self.open),
        )

    def patched(self, grids: set[str], counted: MonthCells) -> MonthCells:
        """These cells, those of ``grids`` (:data:`NO_GRID`: of no grid) replaced by the
        cells ``counted`` (a recount of those grids alone)."""
        codes = self.cells.column("grid_code").cast(pa.string())
        replaced = pc.is_in(codes, value_set=pa.array(sorted(grids - {NO_GRID}), pa.string()))
        if NO_GRID in grids:
            replaced = pc.or_(replaced, pc.is_null(codes))
        kept = self.where(~replaced.fill_null(False).to_numpy(zero_copy_only=False))
        cells = pa.concat_tables([kept.cells, counted.cells], promote_options="permissive")
        cells = cells.unify_dictionaries().combine_chunks()
        for k, name in enumerate(cells.column_names):
            if name not in KEYS:  # a count one side lacks (a new source) is 0 there
                cells = cells.set_column(k, name, pc.fill_null(cells.column(name), 0))
        shift = kept.cells.num_rows

        def joined(old: pa.Table, new: pa.Table) -> pa.Table:
            moved = new.set_column(0, "cell", pc.add(new.column("cell"), np.int32(shift)))
            return pa.concat_tables([old, moved]).combine_chunks()

        closed = joined(kept.closed, counted.closed)
        closed = closed.take(pc.sort_indices(closed, sort_keys=[("hours", "ascending")]))
        return MonthCells(cells=cells, closed=closed, open=joined(kept.open, counted.open))


def lock(conn: Connection) -> None:
    """Wait for any other recount to commit; held until this transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK})


def consume_whole_marks(conn: Connection) -> None:
    """Take the marks of whole months and drop the stored months they name (under
    :func:`lock`); an id range (a large statement's) names the months of its incidents.
    Marks of grids of months no longer stored go too: those months are counted whole."""
    conn.execute(
        text(
            "WITH ranges AS (DELETE FROM assessment_stale WHERE first_id IS NOT NULL"
            " RETURNING generation_id, first_id, last_id),"
            " whole AS (DELETE FROM assessment_stale WHERE first_id IS NULL"
            " AND grid_code IS NULL RETURNING generation_id, month),"
            # each range read along the primary key (LATERAL: never a scan of every incident)
            " named AS (SELECT generation_id, month FROM whole"
            "  UNION SELECT r.generation_id, i.month FROM ranges r CROSS JOIN LATERAL"
            "   (SELECT DISTINCT date_trunc('month', timezone(:zone, reported_at))::date AS month"
            "    FROM incident WHERE id BETWEEN r.first_id AND r.last_id"
            "    AND reported_at IS NOT NULL) i)"
            " DELETE FROM assessment_month s USING named n"
            " WHERE (n.generation_id IS NULL OR n.generation_id = s.generation_id)"
            " AND (n.month IS NULL OR n.month = s.month)"
        ),
        {"zone": LOCAL_TIMEZONE},
    )
    conn.execute(
        text(
            "DELETE FROM assessment_stale s WHERE s.grid_code IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM assessment_month m "
            "WHERE m.generation_id = s.generation_id AND m.month = s.month)"
        )
    )


def drop_other_terms(
    conn: Connection, generation_id: int, months: Sequence[date], terms: str
) -> None:
    """Drop those of ``months`` stored under other terms (another taxonomy), and their
    grids' marks: they are counted whole."""
    params = {"g": generation_id, "months": list(months), "terms": terms}
    conn.execute(
        text(
            "WITH gone AS (DELETE FROM assessment_month WHERE generation_id = :g "
            "AND month = ANY(:months) AND terms <> :terms RETURNING month) "
            "DELETE FROM assessment_stale s USING gone "
            "WHERE s.generation_id = :g AND s.month = gone.month"
        ),
        params,
    )


def take_grid_marks(
    conn: Connection, generation_id: int, months: Sequence[date]
) -> dict[date, set[str]]:
    """Take the marks of grids of ``months``: per month, the grids to count again."""
    rows = conn.execute(
        text(
            "DELETE FROM assessment_stale WHERE generation_id = :g AND month = ANY(:months) "
            "AND grid_code IS NOT NULL RETURNING month, grid_code"
        ),
        {"g": generation_id, "months": list(months)},
    )
    grids: dict[date, set[str]] = {}
    for month, grid in rows:
        grids.setdefault(month, set()).add(grid)
    return grids


_STORED = (
    "FROM assessment_month m WHERE m.generation_id = %(g)s AND m.month = ANY(%(months)s) "
    "AND m.terms = %(terms)s"
)
# A mark without a month (every month, or an id range not yet resolved) makes every month
# of its generation unusable until a recount has consumed it; a grid's mark, its month.
_UNMARKED = (
    " AND NOT EXISTS (SELECT 1 FROM assessment_stale s "
    "WHERE (s.generation_id IS NULL OR s.generation_id = m.generation_id) "
    "AND (s.month IS NULL OR s.month = m.month))"
)


def usable(conn: Connection, generation_id: int, months: Sequence[date], terms: str) -> set[date]:
    """Those of ``months`` stored under ``terms`` and not marked since, as this transaction
    sees them."""
    rows = _rows(conn, f"SELECT m.month {_STORED}{_UNMARKED}", generation_id, months, terms)
    return {month for (month,) in rows}


def stored(conn: Connection, generation_id: int, months: Sequence[date], terms: str) -> set[date]:
    """Those of ``months`` stored under ``terms``, marked or not."""
    rows = _rows(conn, f"SELECT m.month {_STORED}", generation_id, months, terms)
    return {month for (month,) in rows}


def load(
    conn: Connection, generation_id: int, months: Sequence[date], terms: str, *, marked=False
) -> dict[date, MonthCells]:
    """The usable months among ``months`` (see :func:`usable`) with their cells; with
    ``marked``, every month stored under ``terms`` (to be patched)."""
    query = f"SELECT m.month, m.cells, m.closed, m.open {_STORED}"
    rows = _rows(conn, query if marked else query + _UNMARKED, generation_id, months, terms)
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
