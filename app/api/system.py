"""Liveness (/health: the process answers, no database) and readiness (/ready).

A load balancer sends traffic to a server that is ready: its database reachable,
an active generation loaded, the front-end assets of the pages installed. Each
check is named in the answer so an operator sees which one failed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.api.deps import AppState, StateDep
from app.api.errors import DATABASE_DOWN, outage
from app.api.geojson import JSONBytesResponse, dumps
from app.maps.assets import AssetError

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str = Field(description="`ok`, or `no_generation` before areas are loaded.")
    generation: str | None = Field(description="Label of the generation lookups use.")


class Readiness(BaseModel):
    status: str = Field(description="`ready`, or `not_ready` (then the answer is 503).")
    checks: dict[str, str] = Field(
        description="`database`, `generation`, `assets`: `ok` or what is wrong."
    )


@router.get(
    "/health",
    response_model=Health,
    response_class=JSONBytesResponse,
    summary="Liveness: the process answers (no database)",
)
async def health(state: StateDep) -> JSONBytesResponse:
    view = state.registry.active
    label = view.generation.label if view else None
    return JSONBytesResponse(
        dumps({"status": "ok" if view else "no_generation", "generation": label})
    )


@router.get(
    "/ready",
    response_model=Readiness,
    response_class=JSONBytesResponse,
    summary="Readiness: database, active generation, assets",
    responses={503: {"model": Readiness, "description": "Not ready; `checks` says why."}},
)
async def ready(request: Request, state: StateDep) -> JSONBytesResponse:
    checks = {
        "database": await run_in_threadpool(_database_check, request, state),
        "generation": _generation_check(state),
        "assets": _assets_check(state),
    }
    ok = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    headers = None if ok else {"Retry-After": str(outage(request.app).retry_after)}
    return JSONBytesResponse(dumps(body), status_code=200 if ok else 503, headers=headers)


def _database_check(request: Request, state: AppState) -> str:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("select 1"))
    except DATABASE_DOWN as error:
        outage(request.app).went_down(error)
        return "down: the database cannot be reached"
    outage(request.app).came_back()
    return "ok"


def _generation_check(state: AppState) -> str:
    view = state.registry.active
    return "ok" if view is not None else "no active generation loaded (gridmap areas import)"


def _assets_check(state: AppState) -> str:
    try:
        state.pages.store.check()
    except AssetError as error:
        return f"missing: {error}"
    return "ok"
