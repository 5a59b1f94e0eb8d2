"""Generations (versions of the boundary set): list them, activate one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from app.api.deps import AdminDep, ConnDep, StateDep, ToleranceDep
from app.api.errors import ERROR_RESPONSES
from app.api.schemas import ActivationResult, GenerationOut
from app.db import queries, repo
from app.errors import NotFoundError
from app.services.assignment import activate_and_reassign

router = APIRouter(prefix="/generations", tags=["generations"], responses=ERROR_RESPONSES)

GenerationRef = Annotated[
    str, Path(max_length=100, pattern=r"^[^\x00/]+$", description="Generation label or id.")
]


@router.get("", response_model=list[GenerationOut], summary="All generations")
def list_generations(conn: ConnDep) -> list[dict]:
    """Every generation, oldest first, with its area counts per level."""
    counts = queries.generation_counts(conn)
    return [_out(gen, counts.get(gen.id, {})) for gen in repo.list_generations(conn)]


@router.get("/{generation}", response_model=GenerationOut, summary="One generation")
def read_generation(conn: ConnDep, generation: GenerationRef) -> dict:
    gen = repo.get_generation(conn, generation)
    if gen is None:
        raise NotFoundError(f"no generation {generation!r}")
    return _out(gen, queries.generation_counts(conn).get(gen.id, {}))


@router.post(
    "/{generation}/activate",
    response_model=ActivationResult,
    summary="Activate a generation (admin)",
)
async def activate(
    state: StateDep, _: AdminDep, generation: GenerationRef, tolerance: ToleranceDep
) -> dict:
    """Make the generation active and re-assign every incident to its areas.

    Earlier assignments are kept in the assignment history; lookups switch to
    the new boundaries as soon as this returns.
    """
    report = await run_in_threadpool(
        activate_and_reassign, state.engine, generation, tolerance=tolerance
    )
    await run_in_threadpool(state.registry.refresh, True)
    return {
        "generation": report.generation,
        "assigned": report.assigned,
        "by_status": report.by_status,
    }


def _out(gen: repo.GenerationInfo, counts: dict[str, int]) -> dict:
    return {
        "id": gen.id,
        "label": gen.label,
        "is_active": gen.is_active,
        "created_at": gen.created_at,
        "activated_at": gen.activated_at,
        "note": gen.note,
        "counts": counts,
    }
