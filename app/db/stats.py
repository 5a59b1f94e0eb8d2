"""The statistics report's SQL: incidents per area of one level and per month, in one pass.

Every count is of incidents reported in [start, end) and assigned, under one
generation, to an area of the level asked for. On time and late are judged by each
incident's stored ``deadline_at`` (set when it was written, from its category's
deadline then), so importing a taxonomy with other deadlines never changes a past
report; major classes come from the taxonomy in use as a VALUES list (the service
passes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
    values,
)

from app.db.assignments import ASSIGNMENT, INCIDENT
from app.db.queries import code_in_scope
from app.db.repo import AREA
from app.db.staff import STAFF
from gis.vocabulary import HANDLING_LEVELS, LOCAL_TIMEZONE, OPEN_STATUSES

#: Per-area totals of :class:`Figures`, besides ``code``.
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
_COUNTS = TOTAL_COLUMNS[:-1]


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


@dataclass
class Figures:
    """The counts of one report and of its monthly trend, from one pass over the incidents.

    ``totals``: per row code, :data:`TOTAL_COLUMNS`, and a last row with code None holding
    the median of all rows (a median does not add up; the counts do). ``sources`` and
    ``classes``: rows (code, source, count) and (code, major_code, count), counts above 0
    (major_code None: no known category). ``months``: per month (``code``, ``YYYY-MM``) of
    the trend window, :data:`TOTAL_COLUMNS`; empty without a trend.
    """

    totals: pd.DataFrame
    sources: pd.DataFrame
    classes: pd.DataFrame
    months: pd.DataFrame


def _month() -> Any:
    """The month of the report time in local time (``YYYY-MM``), spelled with constants as
    the statistics object ``incident_report_month`` is: the planner then knows a window
    has a dozen months, not a million, and hashes the groups instead of sorting every row."""
    local = func.timezone(literal_column(f"'{LOCAL_TIMEZONE}'"), INCIDENT.c.reported_at)
    return func.to_char(local, literal_column("'YYYY-MM'"))


def _row_key(level: str | None, roster: Any) -> Any:
    """What a report row stands for: an area's code, a staff id (as text) of the
    generation's roster, or a month; None (a trend alone): no row."""
    if level is None:
        return cast(null(), String)
    if level == WORKER:
        return cast(roster.c.id, String)
    if level == MONTH:
        return _month()
    return ASSIGNMENT.c[f"{level}_code"]


def _assigned() -> Any:
    return INCIDENT.join(ASSIGNMENT, ASSIGNMENT.c.incident_id == INCIDENT.c.id)


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


def _incidents(ask: _Ask, *where: Any) -> Any:
    """Per incident of the window in scope: its row key, month, whether it is in the report
    window, and what the counts read (a subquery the counts group)."""
    tx = ask.taxonomy.table()
    roster = STAFF.alias("roster")
    joined = _assigned().outerjoin(tx, tx.c.code == INCIDENT.c.category)
    if ask.level == WORKER:
        joined = joined.outerjoin(
            roster,
            and_(
                roster.c.id == INCIDENT.c.assignee_staff_id,
                roster.c.generation_id == ask.generation_id,
            ),
        )
    due = stored_deadline(tx)
    unresolved = INCIDENT.c.status.in_(OPEN_STATUSES)
    handled = INCIDENT.c.handled_at
    in_report = ask.report.holds(INCIDENT.c.reported_at) if ask.report else false()
    scoped = [ASSIGNMENT.c.generation_id == ask.generation_id]
    if ask.area is not None:
        scoped.append(code_in_scope(ASSIGNMENT.c.grid_code, ask.area))
    hours = extract("epoch", INCIDENT.c.closed_at - INCIDENT.c.reported_at) / 3600.0
    return (
        select(
            _row_key(ask.level, roster).label("row_key"),
            _month().label("month"),
            in_report.label("in_report"),
            INCIDENT.c.handling_level,
            INCIDENT.c.source,
            tx.c.major,
            ((unresolved & (due < literal(ask.now))) | (handled > due)).label("overdue"),
            (handled <= due).label("on_time"),
            cast(hours, Float).label("close_hours"),
        )
        .select_from(joined)
        .where(*scoped, ask.window.holds(INCIDENT.c.reported_at), *where)
        .subquery("counted")
    )


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
    ``trend`` window (either may be None) in one pass over the incidents, then the medians
    of the hours to close in a second query over the closed ones.

    Overdue: still open past its deadline at ``now``, or handled after it. On time: handled
    by the deadline. The deadline is the incident's stored ``deadline_at``; the taxonomy
    in use only stands in for rows without one. Uncategorised incidents have no deadline.
    A worker report counts incidents dispatched to a staff member of the generation's
    roster; the trend counts every incident of the window in scope.
    """
    ask = _Ask(generation_id, level, report, trend, taxonomy, now, area)
    # Compiling the pass's expressions (JIT) took ~0.3 s of a 3 s count of a million
    # incidents and saved less: off for this transaction only.
    conn.execute(text("SET LOCAL jit = off"))
    sources = present_sources(conn)
    majors = list(dict.fromkeys(taxonomy.majors))
    rows = _counts(conn, ask, sources, majors)
    return _split(rows, _medians(conn, ask), sources, majors)


def _counts(conn: Connection, ask: _Ask, sources: list[str], majors: list[str]) -> pd.DataFrame:
    """One pass grouped by (row, month, in the report window): a few groups per area, which
    the database adds up per row and per month; nothing per incident leaves it.
    Rows: kind ("row" or "month"), key, then one column per count."""
    one = _incidents(ask)
    counted = [
        func.count().label("received"),
        *[
            func.count().filter(one.c.handling_level == lv).label(f"handled_{lv}")
            for lv in HANDLING_LEVELS
        ],
        func.count().filter(one.c.overdue).label("overdue"),
        func.count().filter(one.c.on_time).label("on_time"),
        *[
            func.count().filter(one.c.source == s).label(f"source_{k}")
            for k, s in enumerate(sources)
        ],
        *[func.count().filter(one.c.major == m).label(f"class_{k}") for k, m in enumerate(majors)],
        func.count().filter(one.c.major.is_(None)).label("class_none"),
    ]
    keys = [one.c.row_key, one.c.month, one.c.in_report]
    fine = select(*keys, *counted).group_by(*keys).cte("fine")
    sums = [func.sum(fine.c[c.name]).label(c.name) for c in counted]
    per_row = (
        select(literal("row").label("kind"), fine.c.row_key.label("key"), *sums)
        .where(fine.c.in_report, fine.c.row_key.isnot(None))
        .group_by(fine.c.row_key)
    )
    per_month = select(literal("month").label("kind"), fine.c.month.label("key"), *sums)
    per_month = per_month.group_by(fine.c.month)
    parts = [q for q, asked in ((per_row, ask.report), (per_month, ask.trend)) if asked]
    return pd.DataFrame(
        conn.execute(union_all(*parts)).all(), columns=["kind", "key", *[c.name for c in counted]]
    )


def _medians(conn: Connection, ask: _Ask) -> pd.DataFrame:
    """Median hours to close of the closed incidents: per row and of all rows of the report
    window, and per month of the whole window (rows: kind, key, median)."""
    one = _incidents(ask, INCIDENT.c.closed_at.isnot(None))
    median = func.percentile_cont(0.5).within_group(one.c.close_hours)
    query = select(
        one.c.row_key,
        one.c.month,
        func.grouping(one.c.row_key, one.c.month).label("sets"),
        median.filter(one.c.in_report & one.c.row_key.isnot(None)).label("in_report"),
        median.label("in_window"),
    ).group_by(func.grouping_sets(tuple_(one.c.row_key), tuple_(one.c.month), tuple_()))
    rows = pd.DataFrame(
        conn.execute(query).all(), columns=["code", "month", "sets", "in_report", "in_window"]
    )
    # GROUPING(row_key, month) is 1 per row key, 2 per month, 3 for all rows.
    per_row, per_month, overall = (rows[rows["sets"] == n] for n in (1, 2, 3))
    return pd.concat(
        [
            pd.DataFrame({"kind": "row", "key": per_row["code"], "median": per_row["in_report"]}),
            pd.DataFrame(
                {"kind": "month", "key": per_month["month"], "median": per_month["in_window"]}
            ),
            pd.DataFrame({"kind": "all", "key": None, "median": overall["in_report"]}),
        ],
        ignore_index=True,
    )


def _split(
    rows: pd.DataFrame, medians: pd.DataFrame, sources: list[str], majors: list[str]
) -> Figures:
    """The counted rows as the frames of :class:`Figures`."""
    rows[rows.columns[2:]] = rows[rows.columns[2:]].fillna(0).astype("int64")
    found = medians.dropna(subset=["key"])
    median_of = {
        (k, key): m for k, key, m in zip(found["kind"], found["key"], found["median"], strict=True)
    }
    overall = medians[medians["kind"] == "all"]["median"]

    def totals(kind: str) -> pd.DataFrame:
        part = rows[rows["kind"] == kind].rename(columns={"key": "code"})
        table = part[["code", *_COUNTS]].reset_index(drop=True)
        table["median_close_hours"] = [median_of.get((kind, c)) for c in table["code"]]
        return table

    row_totals = totals("row")
    last = float(overall.iloc[0]) if len(overall) and pd.notna(overall.iloc[0]) else None
    records = [*row_totals.to_dict("records"), {"code": None, "median_close_hours": last}]
    row_totals = pd.DataFrame(records, columns=["code", *TOTAL_COLUMNS])
    per_row = rows[rows["kind"] == "row"]

    def long(columns: dict[str, Any], name: str) -> pd.DataFrame:
        frame = per_row.rename(columns={"key": "code", **columns})
        melted = frame.melt(id_vars=["code"], value_vars=list(columns.values()), var_name=name)
        melted = melted.rename(columns={"value": "count"})
        return melted[melted["count"] > 0].reset_index(drop=True)

    source_columns = {f"source_{k}": s for k, s in enumerate(sources)}
    class_columns = {f"class_{k}": m for k, m in enumerate(majors)}
    classes = long({**class_columns, "class_none": "\0none"}, "major_code")
    classes["major_code"] = classes["major_code"].replace({"\0none": None})
    return Figures(
        totals=row_totals,
        sources=long(source_columns, "source")[["code", "source", "count"]],
        classes=classes[["code", "major_code", "count"]],
        months=totals("month"),
    )


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
