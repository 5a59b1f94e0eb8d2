"""Map pages: /map (the district), /map/grids/{code} (one grid), and their JS/CSS.

Every script and stylesheet the pages load comes from ``/static/vendor/``, served
here from the pinned packages ``scripts/install_assets.sh`` installed: the pages
work on an intranet without internet. Pages are built from the app's map data
and cached per parameter set (:class:`app.maps.page_cache.PageCache`, opened by
``create_app``'s lifespan); an ``ETag`` lets browsers revalidate without a rebuild.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from app.api.deps import SelectionDep, StateDep
from app.api.errors import ERROR_RESPONSES
from app.config import MapSettings
from app.errors import NotFoundError
from app.maps.assets import MEDIA_TYPES, AssetError
from app.maps.basemap import PRESETS, Basemap, resolve_basemap
from app.maps.grid_page import build_grid_page
from app.maps.page import PageOptions, build_map_page
from app.maps.page_cache import PageCache
from app.services.analysis import Measure, Selection

__all__ = ["MapQuery", "MapQueryDep", "PagesDep", "map_query", "router", "warm_district_map"]

log = logging.getLogger("gridmap.maps")
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}

router = APIRouter(tags=["maps"], responses=ERROR_RESPONSES)


def warm_district_map(pages: PageCache, root_path: str) -> None:
    """Build the default /map in the background, so the first visitor does not wait."""
    query = MapQuery(Selection(), "count", _configured_basemap(pages.settings))
    options = _options(root_path, "", query, pages)
    pages.warm(_district_builder(pages, query, options), _district_key(query, root_path, ""))


# -- dependencies ----------------------------------------------------------------------
async def page_cache(state: StateDep) -> PageCache:
    return state.pages


PagesDep = Annotated[PageCache, Depends(page_cache)]


@dataclass(frozen=True)
class MapQuery:
    """What a map page shows: the incidents, the choropleth's measure and the basemap."""

    selection: Selection
    measure: Measure
    basemap: Basemap


async def map_query(
    pages: PagesDep,
    selection: SelectionDep,
    measure: Annotated[
        Measure,
        Query(description="What the choropleth shows: incidents, per 1,000 residents or per km²."),
    ] = "count",
    basemap: Annotated[
        str | None,
        Query(
            pattern=rf"^({'|'.join(['default', *PRESETS])})$",
            description="`default` (the server's GRIDMAP_MAP_BASEMAP), `none`, or a preset; "
            "geometries follow the basemap's datum (GCJ-02 for Amap).",
        ),
    ] = None,
) -> MapQuery:
    chosen = (
        _configured_basemap(pages.settings) if basemap in (None, "default") else PRESETS[basemap]
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


def _options(root: str, query: str, params: MapQuery, pages: PageCache) -> PageOptions:
    suffix = f"?{query}" if query else ""
    return PageOptions(
        basemap=params.basemap,
        asset_prefix=f"{root}/static/vendor/",
        grid_url=f"{root}/map/grids/{{code}}{suffix}",
        map_url=f"{root}/map{suffix}",
        simplify_m=pages.settings.simplify_m,
        cluster_points=pages.settings.cluster_points,
        permutations=pages.settings.permutations,
    )


#: The query parameters that change a map page; any other parameter is ignored, so it
#: neither creates a cache entry nor triggers a rebuild.
PAGE_PARAMETERS = ("start", "end", "category", "source", "measure", "basemap")


def page_query(request: Request) -> str:
    """The page's own query string: its parameters only, in one order (the cache key)."""
    params = request.query_params
    return urlencode([(name, params[name]) for name in PAGE_PARAMETERS if params.get(name)])


def _district_key(params: MapQuery, root: str, query: str) -> tuple:
    return ("map", params.selection, params.measure, params.basemap, root, query)


def _district_builder(pages: PageCache, params: MapQuery, options: PageOptions):
    return lambda data: build_map_page(data, params.selection, params.measure, options, pages.store)


def _html(request: Request, pages: PageCache, key: tuple, build) -> Response:
    try:
        etag = pages.etag(key)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        html = pages.page(key, build)
    except AssetError as exc:
        log.error("%s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return HTMLResponse(html, headers={"ETag": etag, "Cache-Control": "no-cache"})


# -- routes ----------------------------------------------------------------------------
@router.get("/map", response_class=HTMLResponse, summary="The district map")
def district_map(request: Request, pages: PagesDep, params: MapQueryDep) -> Response:
    """The district on one page: streets, communities, grids (search by code, tooltips
    with staff and counts), micro-grids, a choropleth, Gi* hot spots, coverage defects,
    incidents outside every grid, incident clusters and a heat layer, with a legend and
    a layer control. Works offline: every asset is served by this app."""
    root, query = request.scope.get("root_path", ""), page_query(request)
    options = _options(root, query, params, pages)
    return _html(
        request,
        pages,
        _district_key(params, root, query),
        _district_builder(pages, params, options),
    )


@router.get("/map/grids/{code}", response_class=HTMLResponse, summary="One grid's map")
def grid_map(
    request: Request,
    pages: PagesDep,
    params: MapQueryDep,
    code: Annotated[str, Path(pattern=r"^\d{1,32}$", description="Unified code of a grid.")],
) -> Response:
    """One grid zoomed in: its micro-grids (with building heads), its incidents of the
    selection, its staff and numbers (counts, rates, Gi*), the grids around it."""
    root, query = request.scope.get("root_path", ""), page_query(request)
    options = _options(root, query, params, pages)
    data = pages.data.data()
    if code not in set(data.level("grid")["code"]):
        raise NotFoundError(
            f"no grid {code!r} in generation {data.generation['label']!r}; see /map"
        )
    key = ("grid", code, params.selection, params.measure, params.basemap, root, query)
    return _html(
        request,
        pages,
        key,
        lambda d: build_grid_page(d, code, params.selection, options, pages.store),
    )


@router.get(
    "/map/redesign/{ref}",
    response_class=HTMLResponse,
    summary="Before/after map of a redesign plan",
)
def redesign_map(
    request: Request,
    state: StateDep,
    pages: PagesDep,
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
    plan = compare_plan(state.engine, ref)
    try:
        page = build_redesign_page(
            plan.before,
            plan.after,
            plan.metrics,
            plan.baseline,
            f"{plan.source} → {plan.label}",
            pages.store,
            f"{root}/static/vendor/",
        )
    except AssetError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return HTMLResponse(page)


@router.get("/static/vendor/{path:path}", include_in_schema=False)
def vendor_asset(path: str, pages: PagesDep) -> Response:
    """A file of an installed front-end package: ``package@version/path``."""
    try:
        found = pages.store.file(path)
    except AssetError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    if found is None:
        raise NotFoundError(f"no asset {path!r}")
    return FileResponse(found, media_type=MEDIA_TYPES[found.suffix], headers=_IMMUTABLE)
