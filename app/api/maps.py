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
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)

from app.api.deps import AppState, PrincipalDep, SelectionDep, StateDep
from app.api.errors import ERROR_RESPONSES
from app.config import MapSettings
from app.errors import NotFoundError, PermissionDeniedError
from app.maps.assets import MEDIA_TYPES, AssetError
from app.maps.basemap import PRESETS, Basemap, resolve_basemap
from app.maps.grid_page import build_grid_page
from app.maps.page import PageOptions, build_map_page
from app.maps.page_cache import PageCache
from app.maps.tiles import served_tiles
from app.services.analysis import Measure, Selection
from app.services.scope import Audience, audience_of, check_area, map_view, within
from app.services.security import Principal

__all__ = ["MapQuery", "MapQueryDep", "PagesDep", "map_query", "router", "warm_district_map"]

log = logging.getLogger("gridmap.maps")
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}

router = APIRouter(tags=["maps"], responses=ERROR_RESPONSES)


def warm_district_map(pages: PageCache, root_path: str) -> None:
    """Build the default /map in the background, so the first visitor does not wait.

    The unscoped signed-in page is built (its analyses are the expensive part, and
    the public page reuses the loaded data).
    """
    query = MapQuery(Selection(), "count", _configured_basemap(pages.settings))
    audience = Audience(incidents=True, staff="phones")
    options = _options(root_path, "", query, pages, audience)
    pages.warm(
        _district_builder(pages, query, options, audience),
        _district_key(query, root_path, "", audience),
    )


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


def _options(
    root: str, query: str, params: MapQuery, pages: PageCache, audience: Audience
) -> PageOptions:
    suffix = f"?{query}" if query else ""
    return PageOptions(
        incidents=audience.incidents,
        # Gi* compares each grid with its neighbours: not on a scope's part of the district.
        hot_spots=audience.incidents and audience.area is None,
        scope=audience.area,
        staff=audience.staff,
        basemap=params.basemap,
        asset_prefix=f"{root}/static/vendor/",
        grid_url=f"{root}/map/grids/{{code}}{suffix}",
        map_url=f"{root}/map{suffix}",
        simplify_m=pages.settings.simplify_m,
        cluster_points=pages.settings.cluster_points,
        permutations=pages.settings.permutations,
        tiles=served_tiles(root, pages.data.version(), pages.settings),
    )


#: The query parameters that change a map page; any other parameter is ignored, so it
#: neither creates a cache entry nor triggers a rebuild.
PAGE_PARAMETERS = ("start", "end", "category", "source", "measure", "basemap")


def page_query(request: Request) -> str:
    """The page's own query string: its parameters only, in one order (the cache key)."""
    params = request.query_params
    return urlencode([(name, params[name]) for name in PAGE_PARAMETERS if params.get(name)])


def _district_key(params: MapQuery, root: str, query: str, audience: Audience) -> tuple:
    # The audience is part of every key: a public request never gets a signed-in page.
    return ("map", audience.key, params.selection, params.measure, params.basemap, root, query)


def _district_builder(pages: PageCache, params: MapQuery, options: PageOptions, audience: Audience):
    return lambda data: build_map_page(
        map_view(data, audience), params.selection, params.measure, options, pages.store
    )


#: Headers a page depends on: a shared cache must not hand one audience's page to another.
_VARY = "Cookie, X-API-Key, Authorization"


def _html(request: Request, pages: PageCache, key: tuple, build, audience: Audience) -> Response:
    # Signed-in pages carry incidents: private to the browser that asked for them.
    cache = "no-cache" if not audience.incidents else "private, no-cache"
    try:
        etag = pages.etag(key)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag, "Vary": _VARY})
        html = pages.page(key, build)
    except AssetError as exc:
        log.error("%s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return HTMLResponse(html, headers={"ETag": etag, "Cache-Control": cache, "Vary": _VARY})


def _sign_in(request: Request) -> RedirectResponse:
    """303 to the sign-in page, coming back to this page (path and query) afterwards."""
    root = request.scope.get("root_path", "")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{root}/login?{urlencode({'next': here})}", status_code=303)


def _page_audience(
    request: Request, state: AppState, principal: Principal | None
) -> Audience | RedirectResponse:
    """Who the page is for; anonymous visitors are sent to sign in under GRIDMAP_PUBLIC_MAP=off."""
    if principal is None and state.api.public_map == "off":
        return _sign_in(request)
    return audience_of(principal, state.api.public_staff)


# -- routes ----------------------------------------------------------------------------
@router.get("/map", response_class=HTMLResponse, summary="The district map")
def district_map(
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    pages: PagesDep,
    params: MapQueryDep,
) -> Response:
    """The district on one page: streets, communities, grids (search by code, tooltips
    with staff and counts), micro-grids, a choropleth, Gi* hot spots, coverage defects,
    incidents outside every grid, incident clusters and a heat layer, with a legend and
    a layer control. Works offline: every asset is served by this app.

    Anonymous visitors get the public page (GRIDMAP_PUBLIC_MAP=boundaries: boundaries,
    codes, names and the published staff, no incident-derived layer) or are sent to
    /login (`off`). A caller scoped to an area sees its incidents only, without Gi*."""
    audience = _page_audience(request, state, principal)
    if isinstance(audience, Response):
        return audience
    root, query = request.scope.get("root_path", ""), page_query(request)
    options = _options(root, query, params, pages, audience)
    return _html(
        request,
        pages,
        _district_key(params, root, query, audience),
        _district_builder(pages, params, options, audience),
        audience,
    )


@router.get("/map/grids/{code}", response_class=HTMLResponse, summary="One grid's map")
def grid_map(
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    pages: PagesDep,
    params: MapQueryDep,
    code: Annotated[str, Path(pattern=r"^\d{1,32}$", description="Unified code of a grid.")],
) -> Response:
    """One grid zoomed in: its micro-grids (with building heads), its incidents of the
    selection, its staff and numbers (counts, rates, Gi*), the grids around it.

    The same audiences as /map; a caller scoped to another area gets 403."""
    audience = _page_audience(request, state, principal)
    if isinstance(audience, Response):
        return audience
    check_area(principal, code)
    root, query = request.scope.get("root_path", ""), page_query(request)
    options = _options(root, query, params, pages, audience)
    data = pages.data.data()
    if code not in set(data.level("grid")["code"]):
        raise NotFoundError(
            f"no grid {code!r} in generation {data.generation['label']!r}; see /map"
        )
    key = (
        "grid",
        audience.key,
        code,
        params.selection,
        params.measure,
        params.basemap,
        root,
        query,
    )
    return _html(
        request,
        pages,
        key,
        lambda d: build_grid_page(
            map_view(d, audience), code, params.selection, options, pages.store
        ),
        audience,
    )


@router.get(
    "/map/redesign/{ref}",
    response_class=HTMLResponse,
    summary="Before/after map of a redesign plan",
)
def redesign_map(
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
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
    outlined, and every metric before and after (see POST /redesign/plans).

    Workload and metrics are weighed from incidents, so the page needs a signed-in
    user or a key (anonymous visitors are sent to /login); a caller scoped to an area
    sees only plans whose grids all lie in it (403 otherwise)."""
    from app.maps.redesign_page import build_redesign_page
    from app.services.redesign import compare_plan

    if principal is None:
        return _sign_in(request)
    root = request.scope.get("root_path", "")
    plan = compare_plan(state.engine, ref)
    for code in (*plan.before["code"], *plan.after["code"]):
        if not within(principal.area, str(code)):
            raise PermissionDeniedError(
                f"不在您的辖区 / plan {ref} redesigns grids outside the area {principal.area}"
            )
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
    return HTMLResponse(page, headers={"Cache-Control": "private, no-cache", "Vary": _VARY})


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
