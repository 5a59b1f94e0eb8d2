"""Grid redesign plans stored as inactive generations, with lineage.

A plan is computed by :class:`gis.redesign.Redesign` on the active
generation's grids (and micro-grids as atoms), then stored as a new, inactive
generation: districts, streets and communities are carried over unchanged, the
new grids get new unified codes (W→E, N→S in each community), micro-grids are
renumbered under their new grid, staff follow their grid's lineage, and the
``lineage`` table records how each old grid maps onto the new ones. Nothing
changes for users until an admin activates the plan, which re-assigns every
incident (``app.services.assignment.activate_and_reassign``) and keeps the old
assignments as history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import plans, repo
from app.db import staff as staff_rows
from app.errors import NotFoundError
from app.services import staff as staff_service
from app.services.area_import import import_areas_on
from gis.codes import DEFAULT_SCHEME
from gis.errors import GridmapError, ValidationError
from gis.redesign import DEFAULT_WEIGHTS, Redesign
from gis.staff import staffed_codes
from gis.vocabulary import AREA_LEVELS, LOCAL_TZ

Progress = Callable[[str], None]
#: Levels above the grid: a redesign keeps them as they are.
CARRIED_LEVELS = AREA_LEVELS[: AREA_LEVELS.index("grid")]
#: What the workload of a grid is computed from (its geometry aside).
WORKLOAD_COLUMNS = tuple(c for c in repo.AREA_PROPERTIES if c != "area_m2")


@dataclass(frozen=True)
class WorkloadWindow:
    """The incidents a workload is counted over: reported in [start, end), local midnights."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, since: date | None = None, until: date | None = None) -> WorkloadWindow:
        """From ``since`` to ``until`` inclusive; by default the 12 months up to today.

        Counted up to *today*, not up to the newest incident: two incidents
        reported today must not shift a year's window onto them (issue 10
        measured the demo's "before" CV jumping from 0.46 to 7.48).
        """
        last = until or datetime.now(LOCAL_TZ).date()
        first = since or _year_before(last) + timedelta(days=1)
        if first > last:
            raise ValidationError(f"--since {first} is after --until {last}")
        return cls(_midnight(first), _midnight(last + timedelta(days=1)))

    @classmethod
    def before(cls, moment: datetime) -> WorkloadWindow:
        """The 12 months up to ``moment`` (plans stored before windows were recorded)."""
        return cls.of(until=moment.astimezone(LOCAL_TZ).date())

    def describe(self) -> str:
        last = self.end.astimezone(LOCAL_TZ).date() - timedelta(days=1)
        return f"{self.start.astimezone(LOCAL_TZ).date()} – {last}"


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), LOCAL_TZ)


@dataclass
class RedesignResult:
    """A computed plan; ``generation`` is None for a dry run."""

    target: int
    mode: str
    metrics: dict
    baseline: dict
    generation: str | None = None
    lineage_rows: int = 0
    seconds: float = 0.0
    new_grids: gpd.GeoDataFrame | None = field(default=None, repr=False)
    lineage: pd.DataFrame | None = field(default=None, repr=False)
    window: WorkloadWindow | None = None
    window_incidents: int = 0
    #: New grids without a grid leader or worker once staff followed their grids.
    unstaffed: list[str] = field(default_factory=list)


def plan_redesign(
    engine: Engine,
    target: int,
    *,
    mode: str = "merge",
    weights: dict[str, float] | None = None,
    nest_within: str = "community",
    band: float | None = None,
    lock_dedicated: bool = False,
    seed: int = 0,
    label: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    since: date | None = None,
    until: date | None = None,
    min_incidents: int | None = None,
) -> RedesignResult:
    """Compute a redesign of the active generation and store it as an inactive generation.

    The incidents weighed are those reported from ``since`` to ``until``
    (:meth:`WorkloadWindow.of`: by default the 12 months up to today). A window
    with some incidents but fewer than ``min_incidents`` (default: one per grid)
    is refused with the count: per-grid counts of a handful of incidents are
    noise. A window with none leaves incidents out of the workload (a city
    with no incident data yet), as :func:`gis.redesign.workload` does.
    """
    say = progress or (lambda message: None)
    window = WorkloadWindow.of(since, until)
    with engine.connect() as conn:
        source = repo.active_generation(conn)
        if source is None:
            raise GridmapError(
                "no active generation to redesign: run `gridmap demo` or import areas first"
            )
        say(f"reading grids, micro-grids and the incidents of {window.describe()}")
        grids, atoms, counted = _workload_frames(conn, source.id, window)
    _check_window(window, counted, min_incidents or len(grids), weights)
    say(f"computing a {mode} plan: {len(grids)} → {target} grids")
    model = Redesign(
        target=target,
        mode=mode,
        weights=weights,
        nest_within=nest_within,
        band=band,
        locked="dedicated" if lock_dedicated else None,
        seed=seed,
    )
    started = datetime.now(UTC)
    model.fit(grids, atoms=atoms if mode == "reshape" else None)
    seconds = (datetime.now(UTC) - started).total_seconds()
    # The current grids scored by the same metric code: the "before" of before/after.
    baseline = Redesign(
        target=len(grids), mode="merge", weights=weights, nest_within=nest_within, band=band
    ).evaluate(grids, pd.Series(grids["code"].to_numpy(), index=grids["code"].to_numpy()))
    result = RedesignResult(
        target,
        mode,
        dict(model.metrics_),
        dict(baseline),
        seconds=seconds,
        new_grids=model.new_grids_,
        lineage=model.lineage_,
        window=window,
        window_incidents=counted,
    )
    if dry_run:
        return result
    say("storing the plan as an inactive generation")
    label = label or f"redesign-{target}-{mode}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    with engine.begin() as conn:
        result.generation = label
        result.lineage_rows = _store_plan(conn, source, label, model, atoms, result)
    return result


def _workload_frames(
    conn: Connection, generation_id: int, window: WorkloadWindow
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, int]:
    """Grids and micro-grids with their workload columns, and the incidents counted (those
    in a grid)."""
    grids = repo.areas_frame(conn, generation_id, "grid", columns=WORKLOAD_COLUMNS)
    atoms = repo.areas_frame(conn, generation_id, "micro_grid", columns=WORKLOAD_COLUMNS)
    if len(grids) == 0:
        raise GridmapError("the active generation has no grids to redesign")
    recent = plans.window_codes(conn, generation_id, window.start, window.end)
    for frame, key in ((grids, "grid_code"), (atoms, "micro_grid_code")):
        frame["incidents"] = frame["code"].map(recent[key].value_counts()).fillna(0).astype(int)
        for column in ("population", "households"):
            frame[column] = pd.to_numeric(frame[column]).fillna(0)
    return grids, atoms, int(recent["grid_code"].notna().sum())


def _check_window(
    window: WorkloadWindow, counted: int, minimum: int, weights: Mapping[str, float] | None
) -> None:
    weighed = (DEFAULT_WEIGHTS if weights is None else weights).get("incidents", 0) > 0
    if weighed and 0 < counted < minimum:
        raise ValidationError(
            f"事件太少 too few incidents: {counted} reported in {window.describe()}, fewer than "
            f"{minimum} (one per grid); choose another window with --since/--until or leave "
            "incidents out of --weights"
        )


def _store_plan(
    conn: Connection,
    source: repo.GenerationInfo,
    label: str,
    model: Redesign,
    atoms: gpd.GeoDataFrame,
    result: RedesignResult,
) -> int:
    target = repo.create_generation(conn, label, note=f"{result.mode} redesign of {source.label}")
    repo.carry_areas(conn, source.id, target.id, CARRIED_LEVELS)
    micro = _renumbered_micro_grids(atoms, model, result.mode)
    for frame, level in ((model.new_grids_.to_crs(4326), "grid"), (micro, "micro_grid")):
        import_areas_on(
            conn,
            frame,
            level,
            source=f"redesign of {source.label}",
            generation=label,
            code_field="code",
            parent_field="parent_code",
            name_field="name",
            kind_field="kind",
        )
    result.unstaffed = _carry_staff(conn, source.id, target.id, model.lineage_, micro)
    # Staffing before and after, beside the other metrics of the plan.
    roles = staff_service.staff_roles(conn)
    staffed = staffed_codes(staff_rows.staff_frame(conn, source.id), roles)
    result.baseline["unstaffed_grids"] = len(set(model.lineage_["old_code"]) - staffed)
    result.metrics["unstaffed_grids"] = len(result.unstaffed)
    plans.store_plan(
        conn,
        plans.PlanInfo(
            generation_id=target.id,
            source_label=source.label,
            source_generation_id=source.id,
            target=result.target,
            mode=result.mode,
            weights={k: float(w) for k, w in model.weights.items()},
            metrics=_jsonable(result.metrics),
            baseline=_jsonable(result.baseline),
            window_start=result.window.start if result.window else None,
            window_end=result.window.end if result.window else None,
            window_incidents=result.window_incidents,
        ),
    )
    return plans.copy_lineage(conn, source.id, target.id, model.lineage_)


def _renumbered_micro_grids(
    atoms: gpd.GeoDataFrame, model: Redesign, mode: str
) -> gpd.GeoDataFrame:
    """Micro-grids under their new grid, numbered W→E, N→S inside it."""
    micro = atoms.copy()
    micro["old_code"] = micro["code"]
    if mode == "reshape":
        micro["parent_code"] = micro["code"].map(model.labels_)
    else:
        micro["parent_code"] = micro["parent_code"].map(model.labels_)
    if micro["parent_code"].isna().any():
        missing = micro.loc[micro["parent_code"].isna(), "code"].head(5).tolist()
        raise GridmapError(f"micro-grids without a new grid in the plan: {missing}")
    micro["code"] = None
    for parent, members in micro.groupby("parent_code").groups.items():
        codes = DEFAULT_SCHEME.number_children(parent, micro.loc[members, "geometry"].tolist())
        micro.loc[members, "code"] = codes
    return micro


def _carry_staff(
    conn: Connection, source_id: int, target_id: int, lineage: pd.DataFrame, micro: gpd.GeoDataFrame
) -> list[str]:
    """Grid staff go to the new grid holding most of their old grid; micro-grid staff follow
    their micro-grid. Returns the new grids left without grid-level staff: a micro-grid
    worker carried into a grid does not staff it (:func:`gis.staff.staffed_codes`)."""
    main = (
        lineage.sort_values("area_share", ascending=False)
        .drop_duplicates("old_code")
        .set_index("old_code")["new_code"]
    )
    moves = {**main.to_dict(), **dict(zip(micro["old_code"], micro["code"], strict=True))}
    staff = staff_rows.roster_frame(conn, source_id)
    staff["area_code"] = staff["area_code"].map(moves)
    carried = staff.dropna(subset=["area_code"])
    staff_rows.copy_staff(conn, carried, target_id)
    staffed = staffed_codes(carried, staff_service.staff_roles(conn))
    return sorted(set(lineage["new_code"]) - staffed)


@dataclass
class PlanComparison:
    """A stored plan next to the generation it redesigned, for the before/after page."""

    label: str
    source: str
    before: gpd.GeoDataFrame
    after: gpd.GeoDataFrame
    metrics: dict
    baseline: dict


def compare_plan(engine: Engine, ref: str) -> PlanComparison:
    """Old and new grids with workload on one scale (1 = average old grid), changed flags."""
    from gis.assign import GridIndex

    with engine.connect() as conn:
        gen, plan = _stored_plan(conn, ref)
        source = repo.get_generation(conn, plan.source_label)
        if source is None:
            raise NotFoundError(
                f"plan {ref!r} redesigned {plan.source_label!r}, which no longer exists"
            )
        window = _plan_window(plan)
        before, _, _ = _workload_frames(conn, source.id, window)
        after = repo.areas_frame(conn, gen.id, "grid")
        lon, lat = plans.window_locations(conn, window.start, window.end)
        lineage = pd.DataFrame(
            plans.lineage_rows(conn, gen.id), columns=list(plans.LINEAGE_COLUMNS)
        )
    codes = GridIndex(after, code="code").assign_xy(lon, lat)["code"]
    after["incidents"] = after["code"].map(codes.value_counts()).fillna(0)
    weights = plan.weights or DEFAULT_WEIGHTS
    scale = {k: _mean_of(before, k) for k in weights}
    used = {k: w for k, w in weights.items() if scale[k] > 0}  # e.g. no incidents yet
    for frame in (before, after):
        frame["workload"] = sum(w * _column(frame, k) / scale[k] for k, w in used.items()) / sum(
            used.values()
        )
    after["changed"] = ~after["code"].isin(_unchanged(lineage))
    # The page shows the window beside the "before" it was measured over.
    baseline = {**plan.baseline, "window": window.describe(), "window_incidents": len(lon)}
    if plan.window_incidents is not None:
        baseline["window_incidents"] = plan.window_incidents
    return PlanComparison(gen.label, source.label, before, after, plan.metrics, baseline)


def _plan_window(plan: plans.PlanInfo) -> WorkloadWindow:
    if plan.window_start is not None and plan.window_end is not None:
        return WorkloadWindow(plan.window_start, plan.window_end)
    return WorkloadWindow.before(plan.created_at or datetime.now(UTC))


def _stored_plan(conn: Connection, ref: str) -> tuple[repo.GenerationInfo, plans.PlanInfo]:
    gen = repo.get_generation(conn, ref)
    plan = None if gen is None else plans.get_plan(conn, gen.id)
    if gen is None or plan is None:
        raise NotFoundError(f"no redesign plan {ref!r}")
    return gen, plan


def _jsonable(metrics: dict) -> dict:
    """Metrics as JSON values: NumPy numbers, wherever they are, become floats."""
    return json.loads(json.dumps(metrics, default=float))


def _column(frame: gpd.GeoDataFrame, key: str) -> pd.Series:
    if key == "area":
        return frame.to_crs(frame.estimate_utm_crs()).area
    return pd.to_numeric(frame[key]).fillna(0)


def _mean_of(frame: gpd.GeoDataFrame, key: str) -> float:
    return float(_column(frame, key).mean())


def _unchanged(lineage: pd.DataFrame) -> set[str]:
    """New grids that are exactly one old grid: one lineage row each way, whole area."""
    per_new = lineage.groupby("new_code")["old_code"].transform("size")
    per_old = lineage.groupby("old_code")["new_code"].transform("size")
    whole = (per_new == 1) & (per_old == 1) & (lineage["area_share"] > 0.999)
    return set(lineage.loc[whole, "new_code"])
