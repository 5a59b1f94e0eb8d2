"""The statistics report: per street, community or grid, what came in and how it was handled.

One row per area of the level asked for (areas without incidents included) and a
totals row: received, by source, by major class of the taxonomy, handled in the
grid, passed up to the community and to the street, overdue, and the on-time
rate. Written for officials: every column has a Chinese and an English header
(``中文 / English``) in the .xlsx and .csv the CLI writes.

Definitions (``docs/domain.md``): *handled in the grid* and *passed up* follow
the incident's handling level; *overdue* is an incident still open past its
deadline or handled after it, the deadline being the one stored with the incident
when it was written (its category's then: a later taxonomy with other deadlines
changes no past figure); the on-time rate is the share handled by
the deadline among those whose outcome is known (handled, or overdue); the median
time to close is in hours from report to close, over the closed ones. Areas are
ranked by on-time rate (ties share a rank; no rank without a known outcome).

The ``worker`` level has a row per staff member of the generation's roster in
scope and counts the incidents dispatched to them; :func:`monthly_trend` counts the
same figures per month. Every figure comes from the queries of ``app.db.stats``:
the console's assessment page, ``GET /stats`` and ``gridmap stats`` share them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import repo
from app.db import stats as stats_rows
from app.errors import NotFoundError, PermissionDeniedError
from app.services.taxonomy import current_taxonomy
from gis.codes import validate
from gis.errors import ValidationError
from gis.tables import write_table
from gis.vocabulary import KNOWN_SOURCES, LOCAL_TZ

#: The levels a report is made for.
REPORT_LEVELS = ("street", "community", "grid", "worker")
TOTAL_CODE = "合计 total"
#: The longest monthly trend drawn (ten years).
MAX_TREND_MONTHS = 120
UNCLASSIFIED = "unclassified"
_UNCLASSIFIED_KEY = f"class:{UNCLASSIFIED}"
#: Sources by their Chinese name (the English is the source's code).
SOURCE_NAMES = {
    "hotline_12345": "12345热线",
    "police_110": "110警情",
    "patrol": "巡查发现",
    "resident": "群众上报",
    "petition": "信访",
    "other": "其他",
}
#: The fixed columns: key → (中文, English).
FIXED_HEADERS = {
    "code": ("编码", "code"),
    "name": ("名称", "name"),
    "received": ("受理总数", "received"),
    "handled_grid": ("网格内处置", "handled in the grid"),
    "handled_community": ("上报社区", "passed up to community"),
    "handled_street": ("上报街道", "passed up to street"),
    "overdue": ("超期", "overdue"),
    "on_time": ("按期办结", "handled on time"),
    "on_time_rate": ("按期办结率", "on-time rate"),
    "area_code": ("所属网格", "grid"),
    "passed_up": ("上报合计", "passed up"),
    "median_close_hours": ("办结用时中位数(小时)", "median hours to close"),
    "rank": ("排名", "rank"),
}


@dataclass
class StatsReport:
    """A report: ``table`` has one row per area then the totals row, columns keyed as
    ``headers`` (key → (中文, English)) lists them."""

    level: str
    generation: str
    start: date | None
    end: date | None
    table: pd.DataFrame
    headers: dict[str, tuple[str, str]]

    def labelled(self) -> pd.DataFrame:
        """The table with "中文 / English" headers, as written to a file."""
        return self.table.rename(
            columns={k: f"{zh} / {en}" for k, (zh, en) in self.headers.items()}
        )

    def records(self) -> list[dict]:
        """Rows as JSON-ready dicts (NaN → None)."""
        frame = self.table.astype(object).where(self.table.notna(), None)
        return frame.to_dict("records")


def narrow_to_district(scope: str | None, district: str | None) -> str | None:
    """The area a report or an analysis covers: the caller's ``scope`` narrowed to ``district``.

    A city's generation holds several districts; ``district`` (a 6-digit code) picks one.
    A scope inside the district stays as it is; a district off the caller's scope is refused.
    """
    if district is None:
        return scope
    code = validate(district, "district")
    if scope is None or code.startswith(scope):
        return code
    if scope.startswith(code):
        return scope
    raise PermissionDeniedError(
        f"不在您的辖区 / district {code} is outside the area {scope} of this caller"
    )


def stats_report(
    engine: Engine,
    level: str,
    *,
    start: date | None = None,
    end: date | None = None,
    generation: str | None = None,
    now: datetime | None = None,
    area: str | None = None,
) -> StatsReport:
    """Count the incidents reported from ``start`` to ``end`` (local days, inclusive).

    With ``area`` (a caller's scope), only the incidents of its grids and the rows of
    the areas inside it or containing it.
    """
    report, _ = _count(engine, level, start, end, None, generation, now, area)
    assert report is not None
    return report


@dataclass
class MonthlyTrend:
    """Per month (``YYYY-MM``, local time) of a period: the report's fixed figures."""

    generation: str
    table: pd.DataFrame

    def records(self) -> list[dict]:
        frame = self.table.astype(object).where(self.table.notna(), None)
        return frame.to_dict("records")


def monthly_trend(
    engine: Engine,
    first: date,
    last: date,
    *,
    generation: str | None = None,
    now: datetime | None = None,
    area: str | None = None,
) -> MonthlyTrend:
    """The months from ``first``'s to ``last``'s (inclusive): received, handled in the grid,
    passed up, overdue, on time, on-time rate and median hours to close, counted by the
    report's own query (months without incidents included, as zeros)."""
    _, trend = _count(engine, None, None, None, (first, last), generation, now, area)
    assert trend is not None
    return trend


def assessment(
    engine: Engine,
    level: str,
    start: date,
    end: date,
    trend_first: date,
    *,
    now: datetime | None = None,
    area: str | None = None,
) -> tuple[StatsReport, MonthlyTrend]:
    """The report of ``start``–``end`` and the trend of the months from ``trend_first``'s to
    ``end``'s, as :func:`stats_report` and :func:`monthly_trend` give them, counted in one
    pass over the incidents (the console's assessment page shows both)."""
    report, trend = _count(engine, level, start, end, (trend_first, end), None, now, area)
    assert report is not None and trend is not None
    return report, trend


def _count(
    engine: Engine,
    level: str | None,
    start: date | None,
    end: date | None,
    months_of: tuple[date, date] | None,
    generation: str | None,
    now: datetime | None,
    area: str | None,
) -> tuple[StatsReport | None, MonthlyTrend | None]:
    """The report at ``level`` (None: none) and the trend over ``months_of`` (None: none)."""
    if level is not None and level not in REPORT_LEVELS:
        raise ValidationError(f"level must be one of {', '.join(REPORT_LEVELS)}, not {level!r}")
    if start and end and start > end:
        raise ValidationError(f"start {start} is after end {end}")
    report = None
    if level is not None:
        stop = end + timedelta(days=1) if end else None
        report = stats_rows.Window(_local_midnight(start), _local_midnight(stop))
    months, trend = _trend_window(months_of)
    gen, taxonomy, areas, found = _figures(
        engine, level, report, trend, generation, now or datetime.now(UTC), area
    )
    stats = None
    if level is not None and areas is not None:
        table, headers = _assemble(areas, found.totals, _class_names(taxonomy))
        stats = StatsReport(level, gen.label, start, end, table, headers)
    return stats, None if months is None else _trend_table(gen.label, months, found.months)


def _figures(
    engine: Engine,
    level: str | None,
    report: stats_rows.Window | None,
    trend: stats_rows.Window | None,
    generation: str | None,
    now: datetime,
    area: str | None,
) -> tuple[repo.GenerationInfo, pd.DataFrame, pd.DataFrame | None, stats_rows.Figures]:
    """The generation, the taxonomy in use, the report's rows and the figures, all read in
    one snapshot. The months the rollup lacks are first counted and kept (a transaction of
    their own: it writes), then everything is read in a new snapshot; a month lacking
    again by then (changed in between) is counted live, never read stale."""
    for attempt in range(2):
        with _snapshot(engine) as conn:
            gen = _generation(conn, generation)
            _, taxonomy = current_taxonomy(conn)
            terms = stats_rows.TaxonomyTerms(
                list(taxonomy["code"]),
                [int(h) for h in taxonomy["deadline_hours"]],
                list(taxonomy["major_code"]),
            )
            wanting = (
                [] if attempt else stats_rows.rollup_wanting(conn, gen.id, report, trend, terms)
            )
            if not wanting:
                areas = None
                if level == stats_rows.WORKER:
                    areas = stats_rows.worker_names(conn, gen.id, area)
                elif level is not None:
                    areas = stats_rows.area_names(conn, gen.id, level, area)
                found = stats_rows.figures(conn, gen.id, level, report, trend, terms, now, area)
                return gen, taxonomy, areas, found
        with engine.begin() as conn:
            stats_rows.refresh_rollup(conn, gen.id, wanting, terms)
    raise AssertionError("the second snapshot always counts")


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction seeing one snapshot throughout (REPEATABLE READ): the stored
    months and the incidents counted live are of the same moment."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def _generation(conn: Connection, generation: str | None) -> repo.GenerationInfo:
    gen = repo.get_generation(conn, generation) if generation else repo.active_generation(conn)
    if gen is None:
        raise NotFoundError(
            f"no generation {generation!r}" if generation else "no active generation"
        )
    return gen


def _trend_window(
    months_of: tuple[date, date] | None,
) -> tuple[pd.PeriodIndex | None, stats_rows.Window | None]:
    """The months of a trend and the window they cover (local midnights)."""
    if months_of is None:
        return None, None
    first, last = months_of
    if first > last:
        raise ValidationError(f"start {first} is after end {last}")
    months = pd.period_range(first, last, freq="M")
    if len(months) > MAX_TREND_MONTHS:
        raise ValidationError(f"a trend covers at most {MAX_TREND_MONTHS} months")
    begin = _local_midnight(months[0].start_time.date())
    stop = _local_midnight(months[-1].end_time.date() + timedelta(days=1))
    return months, stats_rows.Window(begin, stop)


def _trend_table(generation: str, months: pd.PeriodIndex, totals: pd.DataFrame) -> MonthlyTrend:
    table = pd.DataFrame({"month": [str(m) for m in months]}).merge(
        totals.dropna(subset=["code"]).rename(columns={"code": "month"}), on="month", how="left"
    )
    counts = [c for c in stats_rows.TOTAL_COLUMNS if c != "median_close_hours"]
    table[counts] = table[counts].fillna(0).astype(int)
    table["passed_up"] = table["handled_community"] + table["handled_street"]
    table["on_time_rate"] = _rate(table["on_time"], table["overdue"])
    table["median_close_hours"] = table["median_close_hours"].astype(float).round(1)
    return MonthlyTrend(generation, table)


def write_report(report: StatsReport, path: str | Path) -> Path:
    """Write the report as .xlsx or .csv (UTF-8 with a BOM) with Chinese headers."""
    return write_table(report.labelled(), path)


def _local_midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), LOCAL_TZ)


def _class_names(taxonomy: pd.DataFrame) -> dict[str, tuple[str, str]]:
    majors = taxonomy.drop_duplicates("major_code")
    names = dict(
        zip(
            majors["major_code"],
            zip(majors["major_name_zh"], majors["major_name_en"], strict=True),
            strict=True,
        )
    )
    return {**names, UNCLASSIFIED: ("未分类", "unclassified")}


def _assemble(
    areas: pd.DataFrame, totals: pd.DataFrame, class_names: dict[str, tuple[str, str]]
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """The report table: one row per area (or worker) of ``areas``, the figures' columns
    shown (sources and classes only where some row has one), the totals row, rates, ranks."""
    overall = totals[totals["code"].isna()]["median_close_hours"]
    rows = totals.dropna(subset=["code"]).rename(columns={"unclassified": _UNCLASSIFIED_KEY})
    table = areas.merge(rows, on="code", how="left")
    shown = [k for k in ("code", "name", "area_code") if k in table.columns]
    headers = {k: FIXED_HEADERS[k] for k in (*shown, "received")}
    present = [c.removeprefix("source:") for c in rows if c.startswith("source:")]
    counted = {s for s in present if rows[f"source:{s}"].sum() > 0}
    known = [s for s in KNOWN_SOURCES if s in counted]
    for source in known + sorted(counted - set(KNOWN_SOURCES)):
        headers[f"source:{source}"] = (
            f"来源:{SOURCE_NAMES.get(source, source)}",
            f"source: {source}",
        )
    for major, (zh, en) in class_names.items():
        key = f"class:{major}"
        if key in rows and rows[key].sum() > 0:
            headers[key] = (f"类别:{zh}", f"class: {en}")
    for key in ("handled_grid", "handled_community", "handled_street", "overdue", "on_time"):
        headers[key] = FIXED_HEADERS[key]
    counts = [k for k in headers if k not in shown]
    table[counts] = table[counts].fillna(0).astype(int)
    table = pd.concat([table, _totals_row(table, counts)], ignore_index=True)
    table["passed_up"] = table["handled_community"] + table["handled_street"]
    table["on_time_rate"] = _rate(table["on_time"], table["overdue"])
    total_median = float(overall.iloc[0]) if len(overall) and pd.notna(overall.iloc[0]) else None
    medians = pd.to_numeric(table["median_close_hours"], errors="coerce").astype(float)
    medians.iloc[-1] = total_median if total_median is not None else float("nan")
    table["median_close_hours"] = medians.round(1)
    ranks = [*_ranks(table["on_time_rate"].iloc[:-1]), None]  # the totals row has none
    table["rank"] = pd.Series(ranks, index=table.index, dtype=object)
    for key in ("passed_up", "on_time_rate", "median_close_hours", "rank"):
        headers[key] = FIXED_HEADERS[key]
    return table[list(headers)], headers


def _ranks(rates: pd.Series) -> pd.Series:
    """1 for the best on-time rate; ties share a rank; no rate, no rank (the totals row too)."""
    ranks = rates.rank(method="min", ascending=False)
    return pd.Series(
        [None if pd.isna(r) else int(r) for r in ranks], index=rates.index, dtype=object
    )


def _totals_row(table: pd.DataFrame, counts: list[str]) -> pd.DataFrame:
    row = {"code": TOTAL_CODE, "name": "合计", **{k: int(table[k].sum()) for k in counts}}
    return pd.DataFrame([row])


def _rate(on_time: pd.Series, overdue: pd.Series) -> pd.Series:
    decided = on_time + overdue
    return (on_time / decided.where(decided > 0)).round(4)
