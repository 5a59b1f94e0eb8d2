"""The FastAPI application: ``create_app(settings)`` wires settings, lifespan and routers.

Nothing is created at import time. ``gridmap serve`` calls ``create_app``;
``uvicorn app.main:create_app --factory`` works too (settings from the
environment). Routers of later features are appended to :data:`ROUTERS` or
passed as ``extra_routers``.

The lifespan opens every service the routers reach through
:class:`app.api.deps.AppState`; it reads the database URL and never provisions
(``app.db.provision.ensure_database`` is the CLI's explicit step).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from app.api import (
    analysis,
    assessment,
    console,
    departments,
    docs,
    generations,
    grids,
    incidents,
    layers,
    lookup,
    maps,
    ogc,
    open311,
    redesign,
    signin,
    stats,
    system,
    taxonomy,
    tiles,
)
from app.api.audit import AuditMiddleware
from app.api.deps import AppState, requires
from app.api.errors import (
    DATABASE_DOWN,
    ERROR_RESPONSES,
    DatabaseOutage,
    install_error_handlers,
    outage,
)
from app.api.hygiene import SecurityHeadersMiddleware
from app.api.limits import BodyLimitMiddleware
from app.config import ApiSettings, Settings
from app.db.session import make_engine, upgrade
from app.maps.page_cache import PageCache
from app.services.data_version import DataVersion
from app.services.incidents import GazetteerCache
from app.services.index_store import IndexStore
from app.services.map_data import MapDataCache
from app.services.registry import AreaRegistry
from app.services.taxonomy import Taxonomy

log = logging.getLogger("gridmap.api")

#: Routers of the API, in the order their paths appear in the docs.
ROUTERS: list[APIRouter] = [
    ogc.router,
    lookup.router,
    grids.router,
    incidents.router,
    departments.router,
    open311.router,
    generations.router,
    layers.router,
    redesign.router,
    analysis.router,
    maps.router,
    system.router,
    docs.router,
    signin.router,
    console.router,
    assessment.router,
    taxonomy.router,
    stats.router,
    tiles.router,
]
#: Routers serving boundaries without a key; with GRIDMAP_PUBLIC_BOUNDARIES=false they are
#: included behind a viewer check (a dependency only then: it costs on the lookup path).
BOUNDARY_ROUTERS: list[APIRouter] = [
    lookup.router,
    grids.router,
    generations.router,
    layers.router,
    tiles.router,
]

TAGS = [
    {
        "name": "OGC API – Features",
        "description": "Areas and incidents as GeoJSON collections (pygeoapi / tipg style).",
    },
    {
        "name": "lookup",
        "description": "Point → street, community, grid, micro-grid (MapIt style), from memory.",
    },
    {
        "name": "grids",
        "description": "One area by unified code: staff, children, neighbours, "
        "incidents, statistics.",
    },
    {
        "name": "incidents",
        "description": "Report, list and move incidents through the closed loop.",
    },
    {
        "name": "Open311 GeoReport v2",
        "description": "Services and service requests for Open311 clients.",
    },
    {"name": "generations", "description": "Versions of the boundary set."},
    {
        "name": "redesign",
        "description": "Grid redesign plans (e.g. 620 → 539 with balanced "
        "workload), computed in the background and stored as inactive generations.",
    },
    {"name": "analysis", "description": "Coverage defects and Gi* hot spots as GeoJSON."},
    {"name": "maps", "description": "folium map pages that work offline."},
    {"name": "system", "description": "Liveness (/health) and readiness (/ready)."},
    {
        "name": "tiles",
        "description": "Mapbox vector tiles of the areas (ST_AsMVT), for the maps and GIS tools.",
    },
]


def create_app(
    settings: Settings | None = None,
    api: ApiSettings | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the application; the database is opened by the lifespan, not here.

    ``api`` replaces ``settings.api`` (tests tune the API without rebuilding
    the database settings).
    """
    settings = settings or Settings()
    if api is not None:
        settings = settings.model_copy(update={"api": api})
    app = FastAPI(
        title="gridmap",
        version="0.1.0",
        lifespan=_lifespan(settings),
        # /docs and /redoc are served from the app's own pinned assets (app/api/docs.py)
        docs_url=None,
        redoc_url=None,
        # every route may answer these (bad input, no key, an outage …)
        responses=ERROR_RESPONSES,
        description="GIS service for grid governance (网格化管理): unified-code grids in "
        "PostGIS, incident lookup and assignment, the closed loop of handling. "
        "Send API keys as `X-API-Key` (or `Authorization: Bearer`).",
        openapi_tags=TAGS,
    )
    install_error_handlers(app)
    outage(app).retry_after = settings.api.retry_after_seconds
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    # outside the body limit, so a refused oversized write is recorded too
    app.add_middleware(AuditMiddleware)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "If-Match"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    guard = [] if settings.api.public_boundaries else [Depends(requires("viewer"))]
    for router in [*ROUTERS, *extra_routers]:
        app.include_router(router, dependencies=guard if router in BOUNDARY_ROUTERS else [])
    return app


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = await run_in_threadpool(settings.sqlalchemy_url)
        if settings.api.migrate_on_startup:
            await run_in_threadpool(upgrade, url)
        engine = make_engine(url)
        state = _open_state(settings, engine)
        await run_in_threadpool(state.registry.refresh, True)
        app.state.gridmap = state
        if settings.maps.warm_on_startup:
            maps.warm_district_map(state.pages, app.root_path)
        seconds = settings.api.index_refresh_seconds
        watcher = (
            asyncio.create_task(_watch(state.registry, outage(app), seconds))
            if seconds > 0
            else None
        )
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await run_in_threadpool(redesign.shutdown_jobs, app)
            engine.dispose()

    return lifespan


def _open_state(settings: Settings, engine: Engine) -> AppState:
    """The services of one app on ``engine``; nothing is read from the database yet."""
    version = DataVersion(engine, settings.maps.refresh_seconds)
    map_data = MapDataCache(engine, version)
    return AppState(
        settings=settings,
        engine=engine,
        version=version,
        registry=AreaRegistry(engine, version, indexes=IndexStore.from_settings(settings)),
        map_data=map_data,
        pages=PageCache(map_data, settings.maps),
        taxonomy=Taxonomy(engine),
        gazetteer=GazetteerCache(),
    )


async def _watch(registry: AreaRegistry, db: DatabaseOutage, seconds: float) -> None:
    """Pick up generations activated or areas changed by other processes (e.g. the CLI).

    It also notices when the database comes back after an outage.
    """
    while True:
        await asyncio.sleep(seconds)
        try:
            if await run_in_threadpool(registry.refresh):
                log.info("areas changed; lookup index rebuilt")
        except DATABASE_DOWN as error:  # one log line per outage, not one per poll
            db.went_down(error)
            continue
        except Exception:  # a bug must not stop the watcher for good
            log.exception("could not refresh the lookup index")
            continue
        db.came_back()
