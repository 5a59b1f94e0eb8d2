"""Redesign plans over HTTP: computed in the background, stored as inactive generations.

``POST /redesign/plans`` answers 202 at once with a job; the plan is computed
in a worker thread (seconds to a minute) while ``GET /redesign/jobs/{id}``
reports its progress. A finished plan is an inactive generation with lineage;
it becomes live through ``POST /generations/{ref}/activate`` (admin).
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc

from app.api.deps import ConnDep, OperatorDep, StateDep, ViewerDep, checked_generation_ref
from app.api.errors import DATABASE_DOWN, ERROR_RESPONSES
from app.db import plans, repo
from app.errors import NotFoundError, PermissionDeniedError, TooManyRequestsError
from gis.errors import GridmapError

log = logging.getLogger("gridmap.api")
router = APIRouter(prefix="/redesign", tags=["redesign"], responses=ERROR_RESPONSES)


class PlanRequest(BaseModel):
    """What a planner asks for; see `gridmap redesign --help` for the same options."""

    # Numbers are numbers and flags are booleans: no "5", 0.0 or 0 taken for them.
    model_config = ConfigDict(strict=True)

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

    #: Key id of the caller of each job (None: no key, e.g. tests without security).
    owners: dict[str, str | None] = field(default_factory=dict)

    def update(self, job_id: str, **changes) -> None:
        with self.lock:
            job = self.jobs[job_id]
            self.jobs[job_id] = job.model_copy(update=changes)

    def admit(self, job: Job, owner: str | None, per_key: int, total: int) -> None:
        """Add ``job`` unless its owner or everyone already has as many unfinished as allowed."""
        with self.lock:
            unfinished = [i for i, j in self.jobs.items() if j.status in ("queued", "running")]
            mine = sum(1 for i in unfinished if self.owners.get(i) == owner)
            if mine >= per_key:
                raise TooManyRequestsError(
                    f"该密钥已有 {mine} 个规划任务未完成 / this key already has {mine} redesign "
                    f"jobs queued or running (at most {per_key}, GRIDMAP_REDESIGN_JOBS_PER_KEY); "
                    "wait for one to finish (GET /redesign/jobs/{id})"
                )
            if len(unfinished) >= total:
                raise TooManyRequestsError(
                    f"服务器已有 {len(unfinished)} 个规划任务未完成 / the server already has "
                    f"{len(unfinished)} redesign jobs queued or running (at most {total}, "
                    "GRIDMAP_REDESIGN_JOBS_TOTAL); retry later"
                )
            self.jobs[job.id] = job
            self.owners[job.id] = owner


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
    board.admit(
        job,
        principal.caller,  # a key or a signed-in user
        state.api.redesign_jobs_per_key,
        state.api.redesign_jobs_total,
    )
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
            error=job_error(exc),
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


@router.get("/plans", summary="Stored redesign plans (viewer; unscoped callers)")
def list_plans(conn: ConnDep, principal: ViewerDep) -> list[dict[str, Any]]:
    """Plans weigh the whole district's incidents: callers scoped to an area get none."""
    if principal.area is not None:
        return []
    return [_plan_summary(gen, plan) for gen, plan in plans.list_plans(conn)]


@router.get("/plans/{ref}", summary="One plan: metrics before/after, lineage summary (viewer)")
def get_plan(
    conn: ConnDep,
    principal: ViewerDep,
    ref: Annotated[str, Path(description="Generation label or id.", max_length=100)],
    lineage: Annotated[bool, Query(description="Include every lineage row.")] = False,
) -> dict[str, Any]:
    checked_generation_ref(ref)
    if principal.area is not None:
        raise PermissionDeniedError(
            f"不在您的辖区 / a plan's metrics count the whole district's incidents; "
            f"a caller scoped to {principal.area} cannot read them"
        )
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


def job_error(exc: Exception) -> str:
    """What a failed job tells its caller: our own words, never database text."""
    if isinstance(exc, sa_exc.IntegrityError):
        return (
            "标签已被使用 / the label is already used by another generation; "
            "choose another label or leave it out"
        )
    if isinstance(exc, DATABASE_DOWN):
        return "数据库暂不可用 / the database was unavailable; submit the plan again later"
    if isinstance(exc, sa_exc.SQLAlchemyError):
        log.error("redesign job failed in the database: %s", exc)
        return "规划未能保存 / the plan could not be stored; see the server log"
    if isinstance(exc, GridmapError):
        return str(exc)
    log.error("redesign job failed", exc_info=exc)
    return "规划失败 / the plan failed unexpectedly; see the server log"


def _plain(metrics: dict) -> dict:
    return {k: (float(v) if isinstance(v, int | float) else v) for k, v in metrics.items()}
