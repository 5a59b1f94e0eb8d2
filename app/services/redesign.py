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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import incidents as incident_rows
from app.db import plans, repo
from app.db import staff as staff_rows
from app.errors import NotFoundError
from app.services.area_import import import_areas_on
from gis.codes import DEFAULT_SCHEME
from gis.errors import GridmapError
from gis.redesign import Redesign
from gis.vocabulary import AREA_LEVELS

Progress = Callable[[str], None]
#: Levels above the grid: a redesign keeps them as they are.
CARRIED_LEVELS = AREA_LEVELS[: AREA_LEVELS.index("grid")]
#: What the workload of a grid is computed from (its geometry aside).
WORKLOAD_COLUMNS = tuple(c for c in repo.AREA_PROPERTIES if c != "area_m2")


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
) -> RedesignResult:
    """Compute a redesign of the active generation and store it as an inactive generation."""
    say = progress or (lambda message: None)
    with engine.connect() as conn:
        source = repo.active_generation(conn)
        if source is None:
            raise GridmapError(
                "no active generation to redesign: run `gridmap demo` or import areas first"
            )
        say("reading grids, micro-grids and a year of incidents")
        grids, atoms = _workload_frames(conn, source.id)
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
    conn: Connection, generation_id: int
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    grids = repo.areas_frame(conn, generation_id, "grid", columns=WORKLOAD_COLUMNS)
    atoms = repo.areas_frame(conn, generation_id, "micro_grid", columns=WORKLOAD_COLUMNS)
    if len(grids) == 0:
        raise GridmapError("the active generation has no grids to redesign")
    recent = incident_rows.recent_assigned_codes(conn, generation_id)
    for frame, key in ((grids, "grid_code"), (atoms, "micro_grid_code")):
        frame["incidents"] = frame["code"].map(recent[key].value_counts()).fillna(0).astype(int)
        for column in ("population", "households"):
            frame[column] = pd.to_numeric(frame[column]).fillna(0)
    return grids, atoms


def _store_plan(
    conn: Connection,
    source: repo.GenerationInfo,
    label: str,
    model: Redesign,
    atoms: gpd.GeoDataFrame,
    result: RedesignResult,
) -> int:
    target = repo.create_generation(conn, label, note=f"{result.mode} redesign of {source.label}")
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
        ),
    )
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
    _carry_staff(conn, source.id, target.id, model.lineage_, micro)
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
) -> None:
    """Grid staff go to the new grid holding most of their old grid; micro-grid staff follow
    their micro-grid."""
    main = (
        lineage.sort_values("area_share", ascending=False)
        .drop_duplicates("old_code")
        .set_index("old_code")["new_code"]
    )
    moves = {**main.to_dict(), **dict(zip(micro["old_code"], micro["code"], strict=True))}
    staff = staff_rows.staff_frame(conn, source_id)
    staff["area_code"] = staff["area_code"].map(moves)
    staff_rows.copy_staff(conn, staff.dropna(subset=["area_code"]), target_id)


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
    from gis.redesign import DEFAULT_WEIGHTS

    with engine.connect() as conn:
        gen, plan = _stored_plan(conn, ref)
        source = repo.get_generation(conn, plan.source_label)
        if source is None:
            raise NotFoundError(
                f"plan {ref!r} redesigned {plan.source_label!r}, which no longer exists"
            )
        before, _ = _workload_frames(conn, source.id)
        after = repo.areas_frame(conn, gen.id, "grid")
        lon, lat = incident_rows.recent_locations(conn)
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
    return PlanComparison(gen.label, source.label, before, after, plan.metrics, plan.baseline)


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
