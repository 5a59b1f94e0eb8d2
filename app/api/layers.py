"""Thematic layers (多格合一): the themes of a generation and their crosswalk with the grids.

The units themselves are served as OGC API collections ``layer_{theme}``
(``app/api/ogc.py``); this router answers what relates them to the grids.
Public unless GRIDMAP_PUBLIC_BOUNDARIES=false (``app.main.BOUNDARY_ROUTERS``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from app.api.deps import (
    ConnDep,
    GenerationParam,
    StateDep,
    resolve_generation,
)
from app.api.errors import ERROR_RESPONSES
from app.api.geojson import GeoJSONResponse
from app.services import layers as service

router = APIRouter(prefix="/layers", tags=["thematic layers"], responses=ERROR_RESPONSES)

Theme = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="police, market, party, mediation or another theme name.",
    ),
]
Threshold = Annotated[
    float,
    Query(gt=0, le=1, description="Share of a grid's area in one unit from which it is aligned."),
]
Tolerance = Annotated[
    float,
    Query(
        ge=0,
        le=1000,
        description="Metres from a grid boundary within which a theme boundary follows it.",
    ),
]


@router.get("", summary="Themes of a generation")
def list_themes(conn: ConnDep, generation: GenerationParam = None) -> list[dict]:
    """Every theme stored beside the generation, with its number of units."""
    gen = resolve_generation(conn, generation)
    return [
        {
            "theme": layer.theme,
            "generation": layer.generation,
            "units": layer.units,
            "source": layer.source,
            "created_at": layer.created_at.isoformat(),
            "collection": f"layer_{layer.theme}",
        }
        for layer in service.layers_of(conn, gen.id)
    ]


@router.get("/{theme}/crosswalk", summary="Crosswalk of a theme and the grids")
async def crosswalk(
    state: StateDep,
    theme: Theme,
    generation: GenerationParam = None,
    threshold: Threshold = 0.99,
    tolerance: Tolerance = 10.0,
    pairs: Annotated[bool, Query(description="Include every (unit, grid) pair.")] = True,
) -> dict:
    """Alignment score, split grids (largest first) and every (unit, grid) pair.

    A grid is `aligned` when at least `threshold` of its area lies in one unit,
    `split` otherwise, `uncovered` when no unit touches it. Shares are of area
    (metric CRS) and of households (through the micro-grids).
    """
    result = await run_in_threadpool(
        service.crosswalk_of,
        state.engine,
        theme,
        generation,
        threshold=threshold,
        tolerance_m=tolerance,
    )
    body: dict[str, Any] = {
        "summary": result.summary(),
        "split": service.split_records(result),
    }
    if pairs:
        body["pairs"] = service.pairs_records(result)
    return body


@router.get(
    "/{theme}/suggestion",
    response_class=GeoJSONResponse,
    summary="Snapping suggestion of a theme",
)
async def suggestion(
    state: StateDep,
    theme: Theme,
    generation: GenerationParam = None,
) -> GeoJSONResponse:
    """Each unit as the union of the grids mostly inside it, with what would change hands."""
    result = await run_in_threadpool(service.crosswalk_of, state.engine, theme, generation)
    frame = await run_in_threadpool(service.suggestion_of, result)
    return GeoJSONResponse(frame.to_json(na="null", drop_id=True).encode())
