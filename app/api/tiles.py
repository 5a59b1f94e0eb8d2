"""Vector tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt`` (Mapbox Vector Tile 2.1, XYZ scheme).

Layers ``streets``, ``communities``, ``grids``, ``micro_grids`` and ``layer_{theme}``
for the generation's thematic layers; ``generation`` picks another boundary set.
Every feature carries ``code``, ``name``, ``level`` and ``kind`` (units: ``code``,
``name``, ``theme``). For a caller with an API key (or signed in), grids also carry
``incidents`` and ``hot`` (Gi* class, -3…3) of the window ``start``/``end``, as on
``/map``; a key scoped to an area gets them only for the grids inside it.

An empty tile is a 200 with an empty body. The ``ETag`` follows the data version
(``If-None-Match`` answers 304); boundary tiles may be cached by anyone for a day,
tiles with incident numbers only by the caller's browser, for a minute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from app.api.deps import (
    ConnDep,
    GenerationParam,
    PrincipalDep,
    SelectionDep,
    StateDep,
    resolve_generation,
)
from app.api.errors import ERROR_RESPONSES
from app.services import tiles

__all__ = ["router"]

router = APIRouter(tags=["tiles"], responses=ERROR_RESPONSES)

_PUBLIC = "public, max-age=86400"
_PRIVATE = "private, max-age=60"
_VARY = "X-API-Key, Authorization"


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt",
    summary="A vector tile",
    response_class=Response,
    responses={
        200: {"content": {tiles.MEDIA_TYPE: {}}, "description": "The tile (empty: no body)."},
        304: {"description": "Not modified (If-None-Match)."},
    },
)
def tile(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: PrincipalDep,
    selection: SelectionDep,
    layer: Annotated[
        str,
        Path(
            pattern=r"^[a-z][a-z0-9_]{0,40}$",
            description="`streets`, `communities`, `grids`, `micro_grids` or `layer_{theme}`.",
        ),
    ],
    z: Annotated[int, Path(ge=0, le=tiles.MAX_ZOOM, description="Zoom level.")],
    x: Annotated[int, Path(ge=0, description="Column, 0 at the antimeridian (west).")],
    y: Annotated[int, Path(ge=0, description="Row, 0 at the north.")],
    generation: GenerationParam = None,
) -> Response:
    """One tile of the areas of a generation, made by PostGIS (`ST_AsMVT`)."""
    wanted = tiles.TileRequest(layer, z, x, y)
    wanted.check()
    # the lookup index knows the active generation: no query for it on every tile
    view = state.registry.active
    gen = (
        view.generation
        if view is not None and view.matches(generation)
        else resolve_generation(conn, generation)
    )
    numbers_shown = tiles.shows_numbers(principal, layer)
    scope = (principal.area if principal else None, selection) if numbers_shown else None
    etag = tiles.tile_etag(state.map_data.version(), wanted, gen.id, scope)
    public = state.api.public_boundaries and not numbers_shown
    headers = {
        "ETag": etag,
        "Cache-Control": _PUBLIC if public else _PRIVATE,
        "Vary": _VARY,
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    numbers = None
    if numbers_shown and principal is not None:
        data = state.map_data.data(generation)
        numbers = tiles.grid_numbers(
            data,
            selection,
            principal,
            state.settings.maps.permutations,
            tiles.tile_bounds(z, x, y),
        )
    body = tiles.render_tile(conn, wanted, gen.id, numbers)
    return Response(body, media_type=tiles.MEDIA_TYPE, headers=headers)
