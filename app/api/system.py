"""Service health: a trivial endpoint for probes and load balancers (no database)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import StateDep
from app.api.geojson import JSONBytesResponse, dumps

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str = Field(description="`ok`, or `no_generation` before areas are loaded.")
    generation: str | None = Field(description="Label of the generation lookups use.")


@router.get(
    "/health",
    response_model=Health,
    response_class=JSONBytesResponse,
    summary="Liveness and readiness",
)
async def health(state: StateDep) -> JSONBytesResponse:
    view = state.registry.active
    label = view.generation.label if view else None
    return JSONBytesResponse(
        dumps({"status": "ok" if view else "no_generation", "generation": label})
    )
