"""The statistics report's SQL: incidents per area of one level and per month.

Every count is of incidents reported in [start, end) and assigned, under one
generation, to an area of the level asked for. On time and late are judged by each
incident's stored ``deadline_at`` (set when it was written, from its category's
deadline then), so importing a taxonomy with other deadlines never changes a past
report; major classes come from the taxonomy in use as a VALUES list (the service
passes it).

The counts come from two places, counted by the same SQL (:func:`_facts`,
:func:`_tallies`) into the same *cells* and added up by :func:`gis.figures.add_up`:

- the monthly rollup (:mod:`app.db.stats_rollup`): every local month of a generation
  counted once per (street, community, grid, assignee) and kept, until a change to its
  incidents or their assignments marks it (:func:`refresh_rollup` counts the grids
  marked again, or the month). A month is read from it when it lies wholly in the
  report window or wholly out of it (the trend's), or when the window cuts it but none
  of its incidents lies outside the window (the month under way);
- a live count of the rest: the days of a month a window cuts (a period from the
  15th), a month changed since it was counted and not yet counted again, incidents
  without a report time.

A report over a year of a city thus reads twelve stored months instead of a million
incidents. All of it in the caller's transaction:
under REPEATABLE READ (the service's), the stored months and the live count are of
one snapshot, so the figures equal a count written in SQL over the same data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    Connection,
    Date,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    extract,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    values,
)

from app.db import stats_rollup
from app.db.assignments import ASSIGNMENT, INCIDENT
from app.db.queries import CODE_LENGTH, code_in_scope
from app.db.repo import AREA
from app.db.staff import STAFF
from app.db.stats_rollup import MonthCells
from gis.figures import CELL_COUNTS, CLASS, SOURCE, TOTAL_COLUMNS, Cells, Figures, add_up
from gis.vocabulary import HANDLING_LEVELS, LOCAL_TIMEZONE, LOCAL_TZ, OPEN_STATUSES

__all__ = [
    "TOTAL_COLUMNS",
    "WORKER",
    "Figures",
    "TaxonomyTerms",
    "Window",
    "area_names",
    "figures",
    "present_sources",
    "refresh_rollup",
    "rollup_wanting",
    "worker_names",
]

#: What a row may stand for besides an area level: a staff member of the roster (the
#: incident's assignee).
WORKER = "worker"
#: Raised whenever the cells' layout or meaning changes: every stored month is then
#: counted again (it is part of each month's terms fingerprint).
ROLLUP_FORMAT = 1
_CODES = ("street_code", "community_code", "grid_code")


@dataclass(frozen=True)
class Window:
    """Reported in [start, end); None: open on that side."""

    start: datetime | None
    end: datetime | None

    def holds(self, moment: Any) -> Any:
        where = [true()]
        if self.start is not None:
            where.append(moment >= self.start)
        if self.end is not None:
            where.append(moment < self.end)
        return and_(*where)

    def union(self, other: Window) -> Window:
        """The smallest window holding both."""
        starts, ends = [self.start, other.start], [self.end, other.end]
        start = None if None in starts else min(s for s in starts if s is not None)
        end = None if None in ends else max(e for e in ends if e is not None)
        return Window(start, end)

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies inside the window."""
        return (self.start is None or self.start <= start) and (self.end is None or end <= self.end)

    def misses(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies wholly outside the window."""
        return (self.start is not None and end <= self.start) or (
            self.end is not None and self.end <= start
        )


@dataclass(frozen=True)
class TaxonomyTerms:
    """What the counts need of the taxonomy in use: each category's deadline hours (for
    incidents stored without a deadline) and major class."""

    codes: Sequence[str]
    hours: Sequence[int]
    majors: Sequence[str]

    def table(self) -> Any:
        rows = list(zip(self.codes, self.hours, self.majors, strict=True))
        return values(
            column("code", String), column("hours", Integer), column("major", String), name="tx"
        ).data(rows or [("", 0, "")])

    @property
    def major_classes(self) -> list[str]:
        return list(dict.fromkeys(self.majors))

    def fingerprint(self) -> str:
        """What the stored months were counted under: these terms and the cells' layout. A
        month counted under another taxonomy (other classes or fallback deadlines) is not
        used; it is counted again."""
        terms = sorted(zip(self.codes, map(int, self.hours), self.majors, strict=True))
        text_form = json.dumps([ROLLUP_FORMAT, terms], ensure_ascii=False)
        return hashlib.sha256(text_form.encode()).hexdigest()


def stored_deadline(taxonomy: Any) -> Any:
    """The incident's stored deadline; for a row without one (written before deadlines were
    stored, or its category unknown to its taxonomy version), its report time plus the
    hours of ``taxonomy`` (a :meth:`TaxonomyTerms.table` joined on category)."""
    fallback = INCIDENT.c.reported_at + func.make_interval(0, 0, 0, 0, taxonomy.c.hours)
    return func.coalesce(INCIDENT.c.deadline_at, fallback)


def present_sources(conn: Connection) -> list[str]:
    """The sources stored incidents have, walked along the (source, external_id) index
    one value at a time (a handful of steps, however many incidents there are)."""
    step = text(
        "WITH RECURSIVE s(source) AS ("
        " SELECT min(source) FROM incident"
        " UNION ALL SELECT (SELECT min(i.source) FROM incident i WHERE i.source > s.source)"
        " FROM s WHERE s.source IS NOT NULL)"
        " SELECT source FROM s WHERE source IS NOT NULL"
    )
    return list(conn.execute(step).scalars())


# -- months ------------------------------------------------------------------------------
def month_start(day: date) -> datetime:
    """Local midnight of the first day of ``day``'s month."""
    return datetime.combine(day.replace(day=1), time(), LOCAL_TZ)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def whole_months(start: datetime, end: datetime) -> list[date]:
    """The local months (their first days) lying wholly in [start, end)."""
    day = start.astimezone(LOCAL_TZ).date().replace(day=1)
    if month_start(day) < start:
        day = _next_month(day)
    months = []
    while month_start(_next_month(day)) <= end:
        months.append(day)
        day = _next_month(day)
    return months


def _bounded(conn: Connection, window: Window) -> Window | None:
    """``window`` with an open side closed at the first or last report time's month (None:
    no incident has a report time and the window is open)."""
    if window.start is not None and window.end is not None:
        return window
    first, last = conn.execute(
        text("SELECT min(reported_at), max(reported_at) FROM incident")
    ).one()
    if first is None:
        return None
    start = window.start or month_start(first.astimezone(LOCAL_TZ).date())
    end = window.end or month_start(_next_month(last.astimezone(LOCAL_TZ).date()))
    return Window(start, max(start, end))


@dataclass(frozen=True)
class _Ask:
    """One report and trend asked for: which incidents, keyed how, judged when."""

    generation_id: int
    level: str | None
    report: Window | None
    trend: Window | None
    taxonomy: TaxonomyTerms
    now: datetime
    area: str | None

    @property
    def window(self) -> Window:
        if self.trend is None or self.report is None:
            window = self.report or self.trend
            assert window is not None
            return window
        return self.report.union(self.trend)

    @property
    def undated(self) -> bool:
        """Whether incidents without a report time count (a report over all time)."""
        return self.report is not None and self.report.start is None and self.report.end is None

    def storable(self, window: Window) -> dict[date, bool]:
        """The whole months of ``window`` the rollup can give — each wholly in the report
        window or wholly out of it — and whether it is in."""
        assert window.start is not None and window.end is not None
        months = {}
        for month in whole_months(window.start, window.end):
            start, end = month_start(month), month_start(_next_month(month))
            if self.report is None or self.report.misses(start, end):
                months[month] = False
            elif self.report.covers(start, end):
                months[month] = True
        return months

    def edges(self) -> dict[date, list[tuple[datetime, datetime]]]:
        """The months the report window cuts (starts or ends inside), each with its days
        outside the window."""
        if self.report is None:
            return {}
        start, end = self.report.start, self.report.end
        edges: dict[date, list[tuple[datetime, datetime]]] = {}
        for moment in (start, end):
            if moment is None:
                continue
            month = moment.astimezone(LOCAL_TZ).date().replace(day=1)
            first, after = _month_range(month)
            if moment == first:  # a month boundary cuts no month
                continue
            outside = [(first, start), (end, after)]
            edges[month] = [(a, b) for a, b in outside if a is not None and b is not None and a < b]
        return edges


def _months_wanted(conn: Connection, ask: _Ask) -> tuple[Window | None, dict[date, bool]]:
    """The window (closed at the first or last report time where open) and the months the
    rollup can give it, with whether each is in the report window: the whole months wholly
    in or out of it, and a month the report window cuts when none of its incidents lies
    outside the window (the month under way, nothing being reported after today): then its
    incidents are all in the report, as the stored month counts them."""
    window = _bounded(conn, ask.window)
    if window is None:
        return None, {}
    months = ask.storable(window)
    for month, outside in ask.edges().items():
        if not _reported_in(conn, outside):
            months[month] = True
    return window, months


def _reported_in(conn: Connection, ranges: list[tuple[datetime, datetime]]) -> bool:
    """Whether any incident was reported in ``ranges`` (a probe of the report-time index)."""
    if not ranges:
        return False
    found = select(INCIDENT.c.id).where(_in_ranges(ranges, False)).limit(1)
    return conn.execute(select(found.exists())).scalar_one()


# -- the counting SQL --------------------------------------------------------------------
def _month_label() -> Any:
    """The month of the report time in local time (``YYYY-MM``), spelled with constants as
    the statistics object ``incident_report_month`` is: the planner then knows a window
    has a dozen months, not a million, and hashes the groups instead of sorting every row."""
    local = func.timezone(literal_column(f"'{LOCAL_TIMEZONE}'"), INCIDENT.c.reported_at)
    return func.to_char(local, literal_column("'YYYY-MM'"))


def _month_day() -> Any:
    """The month of the report time in local time as its first day, spelled as the
    rollup's triggers spell it (migration 0012)."""
    local = func.timezone(literal_column(f"'{LOCAL_TIMEZONE}'"), INCIDENT.c.reported_at)
    return cast(func.date_trunc(literal_column("'month'"), local), Date)


def _facts(taxonomy: TaxonomyTerms, generation_id: int, keys: list, where: list, roster=None):
    """Per incident assigned under the generation: ``keys``, then what the tallies read.

    Overdue depends on the moment asked, so it is not a fact: an incident handled after
    its deadline is late for good (``late_settled``, or ``open_late`` if reopened); an
    open one not yet known late has its deadline kept (``open_due``), overdue once it
    has passed. Together they are the report's "open past its deadline, or handled
    after it".
    """
    tx = taxonomy.table()
    joined = INCIDENT.join(ASSIGNMENT, ASSIGNMENT.c.incident_id == INCIDENT.c.id).outerjoin(
        tx, tx.c.code == INCIDENT.c.category
    )
    if roster is not None:
        joined = joined.outerjoin(
            roster,
            and_(
                roster.c.id == INCIDENT.c.assignee_staff_id,
                roster.c.generation_id == generation_id,
            ),
        )
    due = stored_deadline(tx)
    unresolved = INCIDENT.c.status.in_(OPEN_STATUSES)
    handled_late = INCIDENT.c.handled_at > due
    hours = extract("epoch", INCIDENT.c.closed_at - INCIDENT.c.reported_at) / 3600.0
    return (
        select(
            *keys,
            INCIDENT.c.handling_level,
            INCIDENT.c.source,
            tx.c.major,
            (INCIDENT.c.handled_at <= due).label("on_time"),
            (~unresolved & handled_late).label("late_settled"),
            (unresolved & handled_late).label("open_late"),
            case((unresolved & ~func.coalesce(handled_late, false()), due)).label("open_due"),
            cast(hours, Float).label("close_hours"),
        )
        .select_from(joined)
        .where(ASSIGNMENT.c.generation_id == generation_id, *where)
        .subquery("counted")
    )


def _tallies(one: Any, sources: Sequence[str], majors: Sequence[str]) -> list:
    """A cell's counts (:data:`gis.figures.CELL_COUNTS`, ``source_<k>``, ``class_<k>``) and
    its incidents' hours to close (``closed``) and open deadlines (``open``)."""
    count = func.count
    return [
        count().label("received"),
        *[
            count().filter(one.c.handling_level == lv).label(f"handled_{lv}")
            for lv in HANDLING_LEVELS
        ],
        count().filter(one.c.on_time).label("on_time"),
        count().filter(one.c.late_settled).label("late_settled"),
        count().filter(one.c.open_late).label("open_late"),
        count().filter(one.c.major.is_(None)).label("unclassified"),
        *[count().filter(one.c.source == s).label(f"source_{k}") for k, s in enumerate(sources)],
        *[count().filter(one.c.major == m).label(f"class_{k}") for k, m in enumerate(majors)],
        func.array_agg(one.c.close_hours).filter(one.c.close_hours.isnot(None)).label("closed"),
        func.array_agg(one.c.open_due).filter(one.c.open_due.isnot(None)).label("open"),
    ]


def _count_names(sources: Sequence[str], majors: Sequence[str]) -> list[str]:
    """The names of :func:`_tallies`' counts as the cells carry them."""
    return [
        *CELL_COUNTS,
        *(f"{SOURCE}{s}" for s in sources),
        *(f"{CLASS}{m}" for m in majors),
    ]


def _in_ranges(ranges: Sequence[tuple[datetime, datetime]], undated: bool) -> Any:
    moment = INCIDENT.c.reported_at
    parts = [and_(moment >= a, moment < b) for a, b in ranges]
    if undated:
        parts.append(moment.is_(None))
    return or_(*parts) if parts else false()


# -- the rollup: months counted and kept -------------------------------------------------
def rollup_wanting(
    conn: Connection,
    generation_id: int,
    report: Window | None,
    trend: Window | None,
    taxonomy: TaxonomyTerms,
) -> list[date]:
    """The months a report (and trend) would read from the rollup that it cannot read now
    (never counted, counted under other terms, or marked stale since)."""
    ask = _Ask(generation_id, None, report, trend, taxonomy, datetime.now(UTC), None)
    _, wanted = _months_wanted(conn, ask)
    ready = stats_rollup.usable(conn, generation_id, list(wanted), taxonomy.fingerprint())
    return sorted(set(wanted) - ready)


def refresh_rollup(
    conn: Connection, generation_id: int, months: Sequence[date], taxonomy: TaxonomyTerms
) -> dict[date, str]:
    """Bring ``months`` of the generation up to date in the rollup: a month not stored (or
    under other terms, or marked whole) is counted whole, a stored month marked grid by
    grid has those grids counted again and patched in. Returns what was done per month
    ("counted" or "patched"). In the caller's transaction, which should do nothing else:
    it holds the rollup's lock until it ends (see :mod:`app.db.stats_rollup`)."""
    stats_rollup.lock(conn)
    terms = taxonomy.fingerprint()
    stats_rollup.drop_other_terms(conn, generation_id, months, terms)
    stats_rollup.consume_whole_marks(conn)
    kept = stats_rollup.stored(conn, generation_id, months, terms)
    patches = stats_rollup.take_grid_marks(conn, generation_id, sorted(kept))
    missing = sorted(set(months) - kept)
    done = {month: "counted" for month in missing}
    if missing:
        counted = _count_months(conn, generation_id, missing, taxonomy)
        stats_rollup.store(conn, generation_id, terms, counted.items())
    if patches:
        old = stats_rollup.load(conn, generation_id, sorted(patches), terms, marked=True)
        recounted = _count_months(conn, generation_id, sorted(patches), taxonomy, patches)
        stats_rollup.store(
            conn,
            generation_id,
            terms,
            ((m, old[m].patched(patches[m], recounted[m])) for m in sorted(patches)),
        )
        done.update({month: "patched" for month in patches})
    return done


def _count_months(
    conn: Connection,
    generation_id: int,
    months: list[date],
    taxonomy: TaxonomyTerms,
    grids: dict[date, set[str]] | None = None,
) -> dict[date, MonthCells]:
    """Each month's cells, counted in one pass over its incidents; with ``grids``, only
    the cells of those grids of each month ('' : of incidents outside every grid)."""
    conn.execute(text("SET LOCAL jit = off"))
    sources, majors = present_sources(conn), taxonomy.major_classes
    keys = [
        _month_day().label("month"),
        *(ASSIGNMENT.c[c] for c in _CODES),
        INCIDENT.c.assignee_staff_id.label("staff_id"),
    ]
    if grids is None:
        where = _in_ranges(_merged([_month_range(m) for m in months]), False)
    else:
        where = or_(
            *(and_(_in_ranges([_month_range(m)], False), _of_grids(grids[m])) for m in months)
        )
    one = _facts(taxonomy, generation_id, keys, [where])
    grouped = [one.c.month, *(one.c[c] for c in _CODES), one.c.staff_id]
    query = select(*grouped, *_tallies(one, sources, majors)).group_by(*grouped)
    names = _count_names(sources, majors)
    frame = _frame(conn, query, ["month", *_CODES, "staff_id", *names, "closed", "open"])
    parts = dict(tuple(frame.groupby("month"))) if len(frame) else {}
    return {month: _month_cells(parts.get(month, frame.iloc[:0]), names) for month in months}


def _month_range(month: date) -> tuple[datetime, datetime]:
    return month_start(month), month_start(_next_month(month))


def _of_grids(grids: set[str]) -> Any:
    """Assigned to one of ``grids`` (:data:`app.db.stats_rollup.NO_GRID`: to none)."""
    named = sorted(grids - {stats_rollup.NO_GRID})
    parts = [ASSIGNMENT.c.grid_code.in_(named)] if named else []
    if stats_rollup.NO_GRID in grids:
        parts.append(ASSIGNMENT.c.grid_code.is_(None))
    return or_(*parts) if parts else false()


def _month_cells(frame: pd.DataFrame, names: list[str]) -> MonthCells:
    """One month's rows of :func:`_count_months` as Arrow tables; the hours sorted."""
    columns: dict[str, pa.Array] = {
        c: pa.array(frame[c], pa.string(), from_pandas=True).dictionary_encode() for c in _CODES
    }
    columns["staff_id"] = pa.array(frame["staff_id"], pa.int64(), from_pandas=True)
    for name in names:
        columns[name] = pa.array(frame[name].to_numpy(np.int32))
    cell, hours = _flat(frame["closed"], np.float64)
    order = np.argsort(hours, kind="stable")
    open_cell, due = _flat(frame["open"], "datetime64[us]")
    return MonthCells(
        cells=pa.table(columns),
        closed=pa.table({"cell": pa.array(cell[order]), "hours": pa.array(hours[order])}),
        open=pa.table({"cell": pa.array(open_cell), "due": pa.array(due, pa.timestamp("us"))}),
    )


def _flat(lists: pd.Series, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per element of the lists (None: empty), its list's position and its value."""
    sizes = np.array([len(v) if v else 0 for v in lists], np.int64)
    cell = np.repeat(np.arange(len(lists), dtype=np.int32), sizes)
    flat = list(chain.from_iterable(v for v in lists if v))
    if np.dtype(dtype).kind == "M":
        stamps = pd.DatetimeIndex(flat).tz_convert(UTC).tz_localize(None) if flat else []
        return cell, np.asarray(stamps, dtype="datetime64[us]")
    return cell, np.asarray(flat, dtype=dtype)


def _merged(ranges: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Adjacent or overlapping ranges as one (fewer conditions for the planner)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# -- the figures -------------------------------------------------------------------------
class _Keys:
    """Labels of the report rows (or months) and their numbers, growing as cells come."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self._number: dict[str, int] = {}

    def numbers(self, labels: Sequence[Any]) -> np.ndarray:
        """The number of each label (-1 for a missing one: None or NaN), new ones added."""
        out = np.empty(len(labels), np.int64)
        for i, label in enumerate(labels):
            if not isinstance(label, str):
                out[i] = -1
                continue
            found = self._number.get(label)
            if found is None:
                found = self._number[label] = len(self.labels)
                self.labels.append(label)
            out[i] = found
        return out

    def extend(self, labels: Sequence[str]) -> int:
        """Add labels known to be new, numbered in order; the number of the first."""
        first = len(self.labels)
        self.labels.extend(labels)
        self._number.update(zip(labels, range(first, first + len(labels)), strict=True))
        return first


def figures(
    conn: Connection,
    generation_id: int,
    level: str | None,
    report: Window | None,
    trend: Window | None,
    taxonomy: TaxonomyTerms,
    now: datetime,
    area: str | None = None,
) -> Figures:
    """Count a report at ``level`` over the ``report`` window and a monthly trend over the
    ``trend`` window (either may be None): the whole months the rollup holds read from
    it, the rest counted live, all added up by :func:`gis.figures.add_up`.

    Overdue: still open past its deadline at ``now``, or handled after it. On time: handled
    by the deadline. The deadline is the incident's stored ``deadline_at``; the taxonomy
    in use only stands in for rows without one. Uncategorised incidents have no deadline.
    A worker report counts incidents dispatched to a staff member of the generation's
    roster; the trend counts every incident of the window in scope.
    """
    ask = _Ask(generation_id, level, report, trend, taxonomy, now, area)
    # Compiling the live count's expressions (JIT) cost more than it saved: off for this
    # transaction only.
    conn.execute(text("SET LOCAL jit = off"))
    sources, majors = present_sources(conn), taxonomy.major_classes
    window, wanted = _months_wanted(conn, ask)
    stored = stats_rollup.load(conn, generation_id, list(wanted), taxonomy.fingerprint())
    keys, months = _Keys(), _Keys()
    parts = []
    if stored:
        rows = _StoredRows(conn, ask, keys)
        for month, counted in sorted(stored.items()):
            number = months.numbers([month.strftime("%Y-%m")])[0]
            parts.append(rows.cells(counted, number, wanted[month]))
    live = _live_ranges(window, stored)
    if live or ask.undated:
        parts.append(_live_cells(conn, ask, live, sources, majors, keys, months))
    cells = Cells.concat(parts) if parts else _no_cells()
    moment = np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "us")
    return add_up(cells, keys.labels, months.labels, moment, sources, majors)


def _live_ranges(
    window: Window | None, stored: dict[date, MonthCells]
) -> list[tuple[datetime, datetime]]:
    """The parts of ``window`` the stored months do not cover."""
    if window is None:
        return []
    assert window.start is not None and window.end is not None
    ranges, start = [], window.start
    for month in sorted(stored):
        begin, end = month_start(month), month_start(_next_month(month))
        if start < begin:
            ranges.append((start, begin))
        start = max(start, end)
    if start < window.end:
        ranges.append((start, window.end))
    return _merged(ranges)


def _no_cells() -> Cells:
    none = np.empty(0, np.int64)
    return Cells(
        row=none,
        month=none,
        in_report=np.empty(0, np.bool_),
        counts={},
        closed_cell=none,
        closed_hours=np.empty(0, np.float64),
        open_cell=none,
        open_due=np.empty(0, "datetime64[us]"),
    )


class _StoredRows:
    """Stored months' cells as :class:`gis.figures.Cells`: in the caller's scope, each
    with the report row it counts for at the level asked."""

    def __init__(self, conn: Connection, ask: _Ask, keys: _Keys):
        self.ask, self.keys = ask, keys
        if ask.level == WORKER:
            # every staff member of the roster a row, numbered in id order
            ids = conn.execute(
                select(func.array_agg(STAFF.c.id)).where(STAFF.c.generation_id == ask.generation_id)
            ).scalar_one()
            self.roster = np.sort(np.array(ids or [], np.int64))
            first = keys.extend([str(i) for i in self.roster])
            self.roster_numbers = np.arange(first, first + len(self.roster))

    def cells(self, counted: MonthCells, month: int, in_report: bool) -> Cells:
        if self.ask.area is not None:
            counted = counted.where(self._in_scope(counted.cells))
        table, closed, opened = counted.cells, counted.closed, counted.open
        n = table.num_rows
        return Cells(
            row=self._rows(table),
            month=np.full(n, month, np.int64),
            in_report=np.full(n, in_report),
            counts={
                name: table.column(name).to_numpy()
                for name in table.column_names
                if name not in (*_CODES, "staff_id")
            },
            closed_cell=closed.column("cell").to_numpy().astype(np.int64),
            closed_hours=closed.column("hours").to_numpy(),
            open_cell=opened.column("cell").to_numpy().astype(np.int64),
            open_due=opened.column("due").to_numpy().astype("datetime64[us]"),
        )

    def _rows(self, table: pa.Table) -> np.ndarray:
        level, n = self.ask.level, table.num_rows
        if level is None:
            return np.full(n, -1, np.int64)
        if level == WORKER:
            if not len(self.roster):
                return np.full(n, -1, np.int64)
            staff = table.column("staff_id").fill_null(-1).to_numpy()
            at = np.searchsorted(self.roster, staff).clip(max=len(self.roster) - 1)
            return np.where(self.roster[at] == staff, self.roster_numbers[at], -1)
        codes = table.column(f"{level}_code").combine_chunks()
        numbers = np.append(self.keys.numbers(codes.dictionary.to_pylist()), -1)
        return numbers[codes.indices.fill_null(-1).to_numpy()]

    def _in_scope(self, table: pa.Table) -> np.ndarray:
        """Which cells are of grids in the caller's area."""
        assert self.ask.area is not None
        codes = table.column("grid_code").combine_chunks()
        inside = [_code_in_scope(c, self.ask.area) for c in codes.dictionary.to_pylist()]
        return np.append(np.array(inside, bool), False)[codes.indices.fill_null(-1).to_numpy()]


def _code_in_scope(code: str, prefix: str) -> bool:
    """:func:`app.db.queries.code_in_scope` in Python: ``code`` starts with ``prefix``."""
    if not prefix.isascii() or not prefix.isdigit():
        return code.startswith(prefix)
    return prefix <= code <= prefix + "9" * max(CODE_LENGTH - len(prefix), 0)


def _live_cells(
    conn: Connection,
    ask: _Ask,
    ranges: list[tuple[datetime, datetime]],
    sources: list[str],
    majors: list[str],
    keys: _Keys,
    months: _Keys,
) -> Cells:
    """The incidents of ``ranges`` (and those without a report time, for a report over all
    time) counted now, one cell per (row, month, in the report window)."""
    roster = STAFF.alias("roster") if ask.level == WORKER else None
    in_report = ask.report.holds(INCIDENT.c.reported_at) if ask.report else false()
    where = [_in_ranges(ranges, ask.undated)]
    if ask.area is not None:
        where.append(code_in_scope(ASSIGNMENT.c.grid_code, ask.area))
    keyed = [
        _row_key(ask.level, roster).label("row_key"),
        _month_label().label("month"),
        in_report.label("in_report"),
    ]
    one = _facts(ask.taxonomy, ask.generation_id, keyed, where, roster)
    grouped = [one.c.row_key, one.c.month, one.c.in_report]
    names = _count_names(sources, majors)
    query = select(*grouped, *_tallies(one, sources, majors)).group_by(*grouped)
    frame = _frame(conn, query, ["row_key", "month", "in_report", *names, "closed", "open"])
    cell, hours = _flat(frame["closed"], np.float64)
    order = np.argsort(hours, kind="stable")
    open_cell, due = _flat(frame["open"], "datetime64[us]")
    return Cells(
        row=keys.numbers(frame["row_key"].tolist()),
        month=months.numbers(frame["month"].tolist()),
        in_report=frame["in_report"].to_numpy(bool),
        counts={name: frame[name].to_numpy(np.int64) for name in names},
        closed_cell=cell[order].astype(np.int64),
        closed_hours=hours[order],
        open_cell=open_cell.astype(np.int64),
        open_due=due,
    )


def _frame(conn: Connection, query: Any, columns: list[str], dtype: Any = object) -> pd.DataFrame:
    """The rows of ``query`` as a frame, fetched by psycopg itself on the connection's
    transaction: SQLAlchemy's row objects, which pandas then probes one by one, cost
    more than the query for a roster of 40,000 staff."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(str(compiled), compiled.params)
        return pd.DataFrame(cursor.fetchall(), columns=columns, dtype=dtype)


def _row_key(level: str | None, roster: Any) -> Any:
    """What a report row stands for: an area's code, or a staff id (as text) of the
    generation's roster; None (a trend alone): no row."""
    if level is None:
        return cast(null(), String)
    if level == WORKER:
        return cast(roster.c.id, String)
    return ASSIGNMENT.c[f"{level}_code"]


# -- the rows' names ---------------------------------------------------------------------
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
    return _frame(conn, query, ["code", "name"], dtype=None)


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
    return _frame(conn, query, ["code", "name", "area_code"], dtype=None)
