"""Vector tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt`` (Mapbox Vector Tile 2.1, XYZ scheme).

Layers ``streets``, ``communities``, ``grids``, ``micro_grids`` and ``layer_{theme}``
for the generation's thematic layers; ``generation`` picks another boundary set.
Every feature carries ``code``, ``name``, ``level`` and ``kind`` (units: ``code``,
``name``, ``theme``). For a caller with an API key (or signed in), grids also carry
``incidents`` and ``hot`` (Gi* class, -3…3) of the window ``start``/``end``, as on
``/map``; a key scoped to an area gets them only for the grids inside it.

An empty tile is a 200 with an empty body. The ``ETag`` follows the data version
kept in memory (boundary tiles: the areas only; with numbers: the incidents too), so
``If-None-Match`` answers 304 without a query; boundary tiles may be cached by anyone
for a day, tiles with incident numbers only by the caller's browser, for a minute.
A tile is one statement on one pooled connection, in autocommit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Connection

from app.api.deps import (
    AppState,
    GenerationParam,
    PrincipalDep,
    SelectionDep,
    StateDep,
    resolve_generation,
)
from app.api.errors import ERROR_RESPONSES, outage
from app.db.repo import GenerationInfo
from app.services import tiles
from app.services.analysis import Selection
from app.services.security import Principal

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
async def tile(
    request: Request,
    state: StateDep,
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
    # One trip to a worker thread for the rest (not one per dependency): a tile is
    # asked for dozens of times a screen, and most are a few milliseconds of SQL.
    return await run_in_threadpool(
        _answer, request, state, principal, selection, wanted, generation
    )


def _answer(
    request: Request,
    state: AppState,
    principal: Principal | None,
    selection: Selection,
    wanted: tiles.TileRequest,
    generation: str | None,
) -> Response:
    # the lookup index knows the active generation: no query for it on every tile
    view = state.registry.active
    if view is not None and view.matches(generation):
        asked = _Asked(wanted, generation, view.generation, principal, selection)
        return _respond(request, state, asked, None)
    with _connection(request, state) as conn:
        asked = _Asked(
            wanted, generation, resolve_generation(conn, generation), principal, selection
        )
        return _respond(request, state, asked, conn)


@dataclass(frozen=True)
class _Asked:
    """One tile request, its generation resolved."""

    tile: tiles.TileRequest
    generation: str | None
    gen: GenerationInfo
    principal: Principal | None
    selection: Selection


def _respond(request: Request, state: AppState, asked: _Asked, conn: Connection | None) -> Response:
    """The tile, or 304 before any query when the caller has it already."""
    wanted, gen, principal, selection = asked.tile, asked.gen, asked.principal, asked.selection
    numbers_shown = tiles.shows_numbers(principal, wanted.layer)
    scope = (principal.area if principal else None, selection) if numbers_shown else None
    version = tiles.tile_version(state.version, state.map_data, wanted, numbers_shown)
    etag = tiles.tile_etag(version, wanted, gen.id, scope)
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
        data = state.map_data.data(asked.generation)
        numbers = tiles.grid_numbers(
            data,
            selection,
            principal,
            state.settings.maps.permutations,
            tiles.tile_bounds(wanted.z, wanted.x, wanted.y),
        )
    if conn is not None:
        body = tiles.render_tile(conn, wanted, gen.id, numbers)
    else:
        with _connection(request, state) as own:
            body = tiles.render_tile(own, wanted, gen.id, numbers)
    return Response(body, media_type=tiles.MEDIA_TYPE, headers=headers)


@contextmanager
def _connection(request: Request, state: AppState) -> Iterator[Connection]:
    """A pooled connection, as ``ConnDep`` gives, opened only when a query is due."""
    # autocommit: one read needs no BEGIN and ROLLBACK, two round trips of a few
    with state.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        outage(request.app).came_back()  # connected: any outage is over
        yield conn
