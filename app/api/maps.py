"""Map pages: /map (the district), /map/grids/{code} (one grid), and their JS/CSS.

Every script and stylesheet the pages load comes from ``/static/vendor/``, served
here from the pinned packages ``scripts/install_assets.sh`` installed: the pages
work on an intranet without internet. Pages are built from cached map data
(:class:`app.maps.service.MapService`) and cached per parameter set; an ``ETag``
lets browsers revalidate without a rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from app.api.deps import StateDep
from app.api.errors import ERROR_RESPONSES, NotFoundError
from app.maps.assets import MEDIA_TYPES, AssetError
from app.maps.basemap import PRESETS, Basemap, resolve_basemap
from app.maps.grid_page import build_grid_page
from app.maps.page import PageOptions, build_map_page
from app.maps.service import MapService
from app.maps.settings import MapSettings
from app.services.analysis import Selection

__all__ = [
    "MapQuery",
    "MapQueryDep",
    "MapsDep",
    "SelectionDep",
    "map_query",
    "map_service",
    "router",
    "selection_query",
]

log = logging.getLogger("gridmap.maps")
_SOURCE = "[a-z][a-z0-9_]{1,63}"
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Prepare the default map in the background once the app's own start-up is done."""
    state = getattr(app.state, "gridmap", None)
    if state is not None:
        service = _service_of(state)
        if service.settings.warm_on_startup:
            query = MapQuery(Selection(), "count", _configured_basemap(service.settings))
            service.warm(
                _district_builder(service, query, _options(app.root_path, "", query, service)),
                _district_key(query, app.root_path, ""),
            )
    yield


router = APIRouter(tags=["maps"], responses=ERROR_RESPONSES, lifespan=_lifespan)


# -- dependencies ----------------------------------------------------------------------
def _service_of(state) -> MapService:
    service = state.extras.get("maps")
    if service is None:
        service = state.extras.setdefault("maps", MapService(state.engine, MapSettings()))
    return service


async def map_service(state: StateDep) -> MapService:
    """The app's :class:`MapService` (created on first use)."""
    return _service_of(state)


MapsDep = Annotated[MapService, Depends(map_service)]


@dataclass(frozen=True)
class MapQuery:
    """What a map page shows: the incidents, the choropleth's measure and the basemap."""

    selection: Selection
    measure: str
    basemap: Basemap


async def selection_query(
    start: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Incidents reported from this time on (inclusive): a date "
            "(`2023-03-01`) or an RFC 3339 time; without an offset, China Standard Time.",
            examples=["2023-01-01"],
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Incidents reported before this time (exclusive).",
            examples=["2023-07-01"],
        ),
    ] = None,
    category: Annotated[
        str | None,
        Query(
            pattern=r"^\d{1,16}(,\d{1,16})*$",
            description="Category codes, comma-separated; a major class code (`04`, public "
            "safety) selects all its items.",
            examples=["04"],
        ),
    ] = None,
    source: Annotated[
        str | None,
        Query(
            pattern=rf"^{_SOURCE}(,{_SOURCE})*$",
            description="Sources, comma-separated (hotline_12345, police_110, patrol, resident, "
            "petition, other, …).",
            examples=["hotline_12345"],
        ),
    ] = None,
) -> Selection:
    return Selection.parse(start, end, category, source)


SelectionDep = Annotated[Selection, Depends(selection_query)]


async def map_query(
    maps: MapsDep,
    selection: SelectionDep,
    measure: Annotated[
        Literal["count", "rate_per_1000", "per_km2"],
        Query(description="What the choropleth shows: incidents, per 1,000 residents or per km²."),
    ] = "count",
    basemap: Annotated[
        str | None,
        Query(
            pattern=r"^(default|none|osm|amap|amap-satellite)$",
            description="`default` (the server's GRIDMAP_MAP_BASEMAP), `none`, or a preset; "
            "geometries follow the basemap's datum (GCJ-02 for Amap).",
        ),
    ] = None,
) -> MapQuery:
    chosen = (
        _configured_basemap(maps.settings) if basemap in (None, "default") else PRESETS[basemap]
    )
    return MapQuery(selection, measure, chosen)


MapQueryDep = Annotated[MapQuery, Depends(map_query)]


def _configured_basemap(settings: MapSettings) -> Basemap:
    return resolve_basemap(
        settings.basemap,
        crs=settings.basemap_crs,
        attribution=settings.basemap_attribution,
        subdomains=settings.basemap_subdomains,
        max_zoom=settings.basemap_max_zoom,
    )


def _options(root: str, query: str, params: MapQuery, service: MapService) -> PageOptions:
    suffix = f"?{query}" if query else ""
    return PageOptions(
        basemap=params.basemap,
        asset_prefix=f"{root}/static/vendor/",
        grid_url=f"{root}/map/grids/{{code}}{suffix}",
        map_url=f"{root}/map{suffix}",
        simplify_m=service.settings.simplify_m,
        cluster_points=service.settings.cluster_points,
        permutations=service.settings.permutations,
    )


def _district_key(params: MapQuery, root: str, query: str) -> tuple:
    return ("map", params.selection, params.measure, params.basemap, root, query)


def _district_builder(service: MapService, params: MapQuery, options: PageOptions):
    return lambda data: build_map_page(
        data, params.selection, params.measure, options, service.store
    )


def _html(request: Request, service: MapService, key: tuple, build) -> Response:
    try:
        etag = service.etag(key)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        html = service.page(key, build)
    except AssetError as exc:
        log.error("%s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return HTMLResponse(html, headers={"ETag": etag, "Cache-Control": "no-cache"})


# -- routes ----------------------------------------------------------------------------
@router.get("/map", response_class=HTMLResponse, summary="The district map")
def district_map(request: Request, maps: MapsDep, params: MapQueryDep) -> Response:
    """The district on one page: streets, communities, grids (search by code, tooltips
    with staff and counts), micro-grids, a choropleth, Gi* hot spots, coverage defects,
    incidents outside every grid, incident clusters and a heat layer, with a legend and
    a layer control. Works offline: every asset is served by this app."""
    root, query = request.scope.get("root_path", ""), request.url.query
    options = _options(root, query, params, maps)
    return _html(
        request, maps, _district_key(params, root, query), _district_builder(maps, params, options)
    )


@router.get("/map/grids/{code}", response_class=HTMLResponse, summary="One grid's map")
def grid_map(
    request: Request,
    maps: MapsDep,
    params: MapQueryDep,
    code: Annotated[str, Path(pattern=r"^\d{1,32}$", description="Unified code of a grid.")],
) -> Response:
    """One grid zoomed in: its micro-grids (with building heads), its incidents of the
    selection, its staff and numbers (counts, rates, Gi*), the grids around it."""
    root, query = request.scope.get("root_path", ""), request.url.query
    options = _options(root, query, params, maps)
    data = maps.data()
    if code not in set(data.level("grid")["code"]):
        raise NotFoundError(
            f"no grid {code!r} in generation {data.generation['label']!r}; see /map"
        )
    key = ("grid", code, params.selection, params.measure, params.basemap, root, query)
    return _html(
        request,
        maps,
        key,
        lambda d: build_grid_page(d, code, params.selection, options, maps.store),
    )


@router.get(
    "/map/redesign/{ref}",
    response_class=HTMLResponse,
    summary="Before/after map of a redesign plan",
)
def redesign_map(
    request: Request,
    maps: MapsDep,
    ref: Annotated[
        str,
        Path(
            max_length=100,
            pattern=r"^[A-Za-z0-9_.:-]+$",
            description="Label or id of a plan's generation.",
        ),
    ],
) -> Response:
    """Old and new grid boundaries, new grids coloured by workload, changed grids
    outlined, and every metric before and after (see POST /redesign/plans)."""
    from app.maps.redesign_page import build_redesign_page
    from app.services.redesign import compare_plan

    root = request.scope.get("root_path", "")
    plan = compare_plan(maps.engine, ref)
    try:
        page = build_redesign_page(
            plan.before,
            plan.after,
            plan.metrics,
            plan.baseline,
            f"{plan.source} → {plan.label}",
            maps.store,
            f"{root}/static/vendor/",
        )
    except AssetError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return HTMLResponse(page)


@router.get("/static/vendor/{path:path}", include_in_schema=False)
def vendor_asset(path: str, maps: MapsDep) -> Response:
    """A file of an installed front-end package: ``package@version/path``."""
    try:
        found = maps.store.file(path)
    except AssetError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    if found is None:
        raise NotFoundError(f"no asset {path!r}")
    return FileResponse(found, media_type=MEDIA_TYPES[found.suffix], headers=_IMMUTABLE)
