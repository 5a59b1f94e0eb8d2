"""The assessment page of the console: ``GET /console/assessment`` and its ``.xlsx``.

For a period (default: the last full month, local time) and a level (street,
community, grid or worker): received, handled in the grid, passed up, overdue, the
on-time rate, the median hours to close and the rank, with a bar chart per area and
a monthly trend. Every number is :func:`app.services.stats.stats_report`'s (and
:func:`~app.services.stats.monthly_trend`'s, both counted at once by
:func:`~app.services.stats.assessment`), the report ``GET /stats`` and
``gridmap stats`` give; the export is :func:`~app.services.stats.write_report` of the
same report. Signed-in users only, within their scope (``Principal.area``).
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from app.api.console import page_response, refusal_page, signed_in
from app.api.deps import AppState, StateDep
from app.pages.charts import Bar, area_bars, trend_lines
from app.services.stats import (
    REPORT_LEVELS,
    TOTAL_CODE,
    StatsReport,
    assessment,
    stats_report,
    write_report,
)
from gis.errors import GridmapError, ValidationError
from gis.vocabulary import LOCAL_TZ

__all__ = ["router"]

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

#: The levels with their Chinese and English names.
LEVEL_NAMES = {
    "street": "街道 Street",
    "community": "社区 Community",
    "grid": "网格 Grid",
    "worker": "网格员 Worker",
}
#: Bars drawn per chart: the areas that received most (the table lists every one).
MAX_BARS = 30
#: Rows of the figures table on one page (a city's roster has tens of thousands of
#: workers: the page shows them a page at a time, the .xlsx has every one).
PAGE_ROWS = 200
#: Months the trend shows at least, ending with the period's last month.
TREND_MONTHS = 12
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def last_full_month(today: date) -> tuple[date, date]:
    """The first and last day of the month before ``today``'s."""
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _choice(request: Request) -> tuple[date, date, str]:
    """The period and level asked for (defaults: last full month, street); 422 if malformed."""
    default_start, default_end = last_full_month(datetime.now(LOCAL_TZ).date())
    days = []
    for name, default in (("start", default_start), ("end", default_end)):
        text = request.query_params.get(name, "").strip()
        if not text:
            days.append(default)
            continue
        try:
            if not _DAY.match(text):
                raise ValueError(text)
            days.append(date.fromisoformat(text))
        except ValueError:
            raise ValidationError(
                f"日期无效 / {name} must be a day as YYYY-MM-DD, not {text[:20]!r}"
            ) from None
    level = request.query_params.get("level", "").strip() or "street"
    if level not in REPORT_LEVELS:
        raise ValidationError(
            f"层级无效 / level must be one of {', '.join(REPORT_LEVELS)}, not {level[:20]!r}"
        )
    start, end = days
    if start > end:
        raise ValidationError(f"开始日期晚于结束日期 / start {start} is after end {end}")
    return start, end, level


def _page_number(request: Request) -> int:
    """The 0-based page of the figures table asked for; 422 if malformed."""
    text = request.query_params.get("page", "").strip() or "0"
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise ValidationError(f"页码无效 / page must be a whole number, not {text[:20]!r}")
    return int(text)


def _trend_start(start: date, end: date) -> date:
    """At least a year of months, ending with the period's last month."""
    first = end.replace(day=1)
    for _ in range(TREND_MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return min(start, first)


def _read(state: AppState, area: str | None, start: date, end: date, level: str) -> dict:
    # the report and the trend counted in one pass over the incidents (a city has millions)
    report, trend = assessment(
        state.engine, level, start, end, _trend_start(start, end), area=area, now=datetime.now(UTC)
    )
    return {"report": report, "trend": trend}


def _ranked_rows(report: StatsReport, page: int) -> tuple[list[dict], int, dict]:
    """The areas of one page, best rank first (no rank last, then most received), how many
    areas there are, and the totals row. Sorted as a frame and only the page made into
    records: a worker report has a row per staff member of a city's roster."""
    table = report.table.astype(object).where(report.table.notna(), None)
    areas, total = table.iloc[:-1], table.iloc[-1].to_dict()
    order = pd.DataFrame(
        {
            "unranked": areas["rank"].isna(),
            "rank": areas["rank"].fillna(0).astype(int),
            "received": -areas["received"].astype(int),
            "code": areas["code"].astype(str),
        }
    ).sort_values(["unranked", "rank", "received", "code"], kind="stable")
    shown = areas.loc[order.index[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]]
    return shown.to_dict("records"), len(areas), total


def _bars(report: StatsReport) -> list[Bar]:
    areas = report.table[report.table["code"] != TOTAL_CODE]
    top = areas.sort_values(["received", "code"], ascending=[False, True]).head(MAX_BARS)
    return [
        Bar(
            label=str(row["name"]),
            received=int(row["received"]),
            handled_grid=int(row["handled_grid"]),
            passed_up=int(row["passed_up"]),
        )
        for _, row in top.iterrows()
    ]


@router.get("/assessment", response_class=HTMLResponse)
async def assessment_page(request: Request, state: StateDep) -> Response:
    """The figures of a period per area or worker, ranked, with two charts."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user
    try:
        start, end, level = _choice(request)
        page = _page_number(request)
        data = await run_in_threadpool(_read, state, user.area, start, end, level)
    except GridmapError as error:
        return refusal_page(request, error)
    report, trend = data["report"], data["trend"]
    areas, rows, total = _ranked_rows(report, page)
    query = urlencode({"start": start.isoformat(), "end": end.isoformat(), "level": level})
    root = request.scope.get("root_path", "")
    return page_response(
        request,
        "console_assessment.html",
        start=start,
        end=end,
        level=level,
        level_names=LEVEL_NAMES,
        areas=areas,
        rows=rows,
        page=page,
        pages=max(1, -(-rows // PAGE_ROWS)),
        page_link=f"{root}/console/assessment?{query}&page=",
        total=total,
        generation=report.generation,
        export=f"{root}/console/assessment.xlsx?{query}",
        bars=area_bars(_bars(report)),
        bars_shown=min(MAX_BARS, rows),
        trend=trend_lines(
            list(trend.table["month"]),
            [int(v) for v in trend.table["received"]],
            [int(v) for v in trend.table["handled_grid"]],
        ),
        trend_rows=trend.records(),
    )


@router.get("/assessment.xlsx")
async def assessment_export(request: Request, state: StateDep) -> Response:
    """The page's report as ``gridmap stats`` writes it (.xlsx, Chinese and English headers)."""
    user = await signed_in(request, state)
    if isinstance(user, Response):
        return user
    try:
        start, end, level = _choice(request)
        content = await run_in_threadpool(_workbook, state, user.area, start, end, level)
    except GridmapError as error:
        return refusal_page(request, error)
    name = f"assessment-{level}-{start.isoformat()}-{end.isoformat()}.xlsx"
    return Response(
        content,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "no-store",
        },
    )


def _workbook(state: AppState, area: str | None, start: date, end: date, level: str) -> bytes:
    report = stats_report(state.engine, level, start=start, end=end, area=area)
    with tempfile.TemporaryDirectory(prefix="gridmap-assessment-") as folder:
        return write_report(report, Path(folder) / "assessment.xlsx").read_bytes()
