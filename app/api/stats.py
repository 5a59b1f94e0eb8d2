"""``GET /stats``: the statistics report per street, community or grid (viewer key)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from app.api.deps import GenerationParam, StateDep, ViewerDep
from app.api.errors import ERROR_RESPONSES
from app.services.stats import stats_report

router = APIRouter(tags=["incidents"], responses=ERROR_RESPONSES)


@router.get("/stats", summary="Statistics report per area (viewer)")
async def stats(
    state: StateDep,
    _: ViewerDep,
    level: Annotated[
        Literal["street", "community", "grid"], Query(description="Level of the report's rows.")
    ],
    start: Annotated[date | None, Query(description="First day (local time).")] = None,
    end: Annotated[date | None, Query(description="Last day, inclusive.")] = None,
    generation: GenerationParam = None,
) -> dict:
    """Per area: received, by source, by major class, handled in the grid, passed up to
    the community and the street, overdue and the on-time rate; the last row is the total.

    `columns` lists every key of the rows with its Chinese and English header.
    """
    report = await run_in_threadpool(
        stats_report, state.engine, level, start=start, end=end, generation=generation
    )
    return {
        "level": report.level,
        "generation": report.generation,
        "start": report.start,
        "end": report.end,
        "columns": [{"key": k, "zh": zh, "en": en} for k, (zh, en) in report.headers.items()],
        "rows": report.records(),
    }
