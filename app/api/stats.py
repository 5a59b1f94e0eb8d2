"""``GET /stats``: the statistics report per street, community or grid (viewer key)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from app.api.deps import GenerationParam, StateDep, ViewerDep
from app.api.errors import ERROR_RESPONSES
from app.services.stats import narrow_to_district, stats_report

router = APIRouter(tags=["incidents"], responses=ERROR_RESPONSES)


@router.get("/stats", summary="Statistics report per area (viewer)")
async def stats(
    state: StateDep,
    viewer: ViewerDep,
    level: Annotated[
        # no worker level here: rosters are personal data and never leave through the API
        Literal["street", "community", "grid"],
        Query(description="Level of the report's rows."),
    ],
    start: Annotated[date | None, Query(description="First day (local time).")] = None,
    end: Annotated[date | None, Query(description="Last day, inclusive.")] = None,
    generation: GenerationParam = None,
    district: Annotated[
        str | None,
        Query(
            max_length=20,
            description="A district's 6-digit code: the report of that district only "
            "(a city's generation holds several). Default: the whole generation.",
        ),
    ] = None,
) -> dict:
    """Per area: received, by source, by major class, handled in the grid,
    passed up to the community and the street, overdue, the on-time rate, the median hours
    to close and the rank by on-time rate; the last row is the total.

    `columns` lists every key of the rows with its Chinese and English header. A key
    scoped to an area counts that area's incidents only.
    """
    report = await run_in_threadpool(
        stats_report,
        state.engine,
        level,
        start=start,
        end=end,
        generation=generation,
        area=narrow_to_district(viewer.area, district),
    )
    return {
        "level": report.level,
        "generation": report.generation,
        "start": report.start,
        "end": report.end,
        "columns": [{"key": k, "zh": zh, "en": en} for k, (zh, en) in report.headers.items()],
        "rows": report.records(),
    }
