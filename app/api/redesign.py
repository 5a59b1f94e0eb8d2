"""Redesign plans over HTTP: computed in the background, stored as inactive generations.

``POST /redesign/plans`` answers 202 at once with a job; the plan is computed
in a worker thread (seconds to a minute) while ``GET /redesign/jobs/{id}``
reports its progress. A finished plan is an inactive generation with lineage;
it becomes live through ``POST /generations/{ref}/activate`` (admin).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from app.api.deps import ConnDep, OperatorDep, StateDep, ViewerDep
from app.api.errors import ERROR_RESPONSES
from app.db import plans, repo
from app.errors import NotFoundError

router = APIRouter(prefix="/redesign", tags=["redesign"], responses=ERROR_RESPONSES)


class PlanRequest(BaseModel):
    """What a planner asks for; see `gridmap redesign --help` for the same options."""

    target: int = Field(ge=1, le=100_000, description="Number of grids wanted, e.g. 539.")
    mode: Literal["merge", "reshape"] = Field(
        "merge", description="merge: unions of whole grids; reshape: micro-grids move."
    )
    weights: (
        dict[
            Literal["households", "population", "incidents", "area"],
            Annotated[float, Field(ge=0, le=1000)],
        ]
        | None
    ) = Field(
        None,
        description="Workload weights; default households 0.4, population 0.2, "
        "incidents 0.3, area 0.1.",
    )
    nest_within: Literal["community", "street"] = Field(
        "community", description="Every new grid stays inside one of these."
    )
    band: float | None = Field(
        None, gt=0, lt=10, description="Require every grid within ±band of the mean."
    )
    lock_dedicated: bool = Field(False, description="Keep dedicated grids as they are.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the search.")
    label: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Label of the new generation.",
    )
    dry_run: bool = Field(False, description="Compute and report metrics; store nothing.")


class Job(BaseModel):
    id: str = Field(description="Job id.")
    status: Literal["queued", "running", "done", "failed"]
    progress: str = Field(description="What the job is doing now.")
    submitted_at: datetime
    finished_at: datetime | None = None
    request: PlanRequest
    result: dict[str, Any] | None = Field(
        None, description="Metrics before/after and the stored generation, when done."
    )
    error: str | None = None


@dataclass
class JobBoard:
    """In-memory jobs of this process (a plan is stored in the database when done)."""

    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="redesign")
    )
    jobs: dict[str, Job] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, job_id: str, **changes) -> None:
        with self.lock:
            job = self.jobs[job_id]
            self.jobs[job_id] = job.model_copy(update=changes)


def _board(request: Request) -> JobBoard:
    board = getattr(request.app.state, "redesign_jobs", None)
    if board is None:
        board = request.app.state.redesign_jobs = JobBoard()
    return board


def shutdown_jobs(app) -> None:
    """Called by the lifespan on shutdown: wait for a running plan, drop queued ones.

    A plan half-written when the database engine closes would be lost anyway
    (it commits in one transaction); waiting lets a running one finish cleanly.
    """
    board = getattr(app.state, "redesign_jobs", None)
    if board is not None:
        board.executor.shutdown(wait=True, cancel_futures=True)


@router.post(
    "/plans",
    status_code=202,
    response_model=Job,
    summary="Compute a redesign plan in the background (operator)",
)
def create_plan(
    body: PlanRequest, request: Request, state: StateDep, principal: OperatorDep
) -> Job:
    board = _board(request)
    job = Job(
        id=uuid.uuid4().hex[:12],
        status="queued",
        progress="waiting for a worker",
        submitted_at=datetime.now(UTC),
        request=body,
        result=None,
    )
    with board.lock:
        board.jobs[job.id] = job
    board.executor.submit(_run, board, job.id, state.engine, body)
    return job


def _run(board: JobBoard, job_id: str, engine, body: PlanRequest) -> None:
    from app.services.redesign import plan_redesign

    board.update(job_id, status="running", progress="starting")
    try:
        result = plan_redesign(
            engine,
            body.target,
            mode=body.mode,
            weights={str(k): w for k, w in body.weights.items()} if body.weights else None,
            nest_within=body.nest_within,
            band=body.band,
            lock_dedicated=body.lock_dedicated,
            seed=body.seed,
            label=body.label,
            dry_run=body.dry_run,
            progress=lambda message: board.update(job_id, progress=message),
        )
    except Exception as exc:  # reported through the job, never lost in a thread
        board.update(
            job_id,
            status="failed",
            progress="failed",
            error=str(exc),
            finished_at=datetime.now(UTC),
        )
        return
    board.update(
        job_id,
        status="done",
        progress="done",
        finished_at=datetime.now(UTC),
        result={
            "generation": result.generation,
            "metrics": _plain(result.metrics),
            "baseline": _plain(result.baseline),
            "seconds": result.seconds,
            "lineage_rows": result.lineage_rows,
        },
    )


@router.get("/jobs/{job_id}", response_model=Job, summary="Progress and result of a job")
def get_job(
    request: Request,
    principal: ViewerDep,
    job_id: Annotated[str, Path(description="Id returned by POST /redesign/plans.", max_length=64)],
) -> Job:
    job = _board(request).jobs.get(job_id)
    if job is None:
        raise NotFoundError(f"no redesign job {job_id!r} in this server process")
    return job


@router.get("/plans", summary="Stored redesign plans (generations made by a redesign)")
def list_plans(conn: ConnDep) -> list[dict[str, Any]]:
    return [_plan_summary(gen, plan) for gen, plan in plans.list_plans(conn)]


@router.get("/plans/{ref}", summary="One plan: metrics before/after, lineage summary")
def get_plan(
    conn: ConnDep,
    ref: Annotated[str, Path(description="Generation label or id.", max_length=100)],
    lineage: Annotated[bool, Query(description="Include every lineage row.")] = False,
) -> dict[str, Any]:
    gen = repo.get_generation(conn, ref)
    plan = None if gen is None else plans.get_plan(conn, gen.id)
    if gen is None or plan is None:
        raise NotFoundError(f"no redesign plan {ref!r}")
    summary = _plan_summary(gen, plan)
    rows = plans.lineage_rows(conn, gen.id)
    summary["lineage_rows"] = len(rows)
    summary["changed_grids"] = len({r["new_code"] for r in rows if r["area_share"] < 0.999})
    if lineage:
        summary["lineage"] = rows
    return summary


def _plan_summary(gen: repo.GenerationInfo, plan: plans.PlanInfo) -> dict[str, Any]:
    return {
        "generation": gen.label,
        "id": gen.id,
        "active": gen.is_active,
        "created_at": gen.created_at.isoformat(),
        "redesign_of": plan.source_label,
        "mode": plan.mode,
        "target": plan.target,
        "metrics": plan.metrics,
        "baseline": plan.baseline,
    }


def _plain(metrics: dict) -> dict:
    return {k: (float(v) if isinstance(v, int | float) else v) for k, v in metrics.items()}
