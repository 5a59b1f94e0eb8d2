"""Redesign plans (table ``redesign_plan``) and the lineage of their grids."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table, func, insert, select

from app.db.assignments import ASSIGNMENT, INCIDENT
from app.db.bulk import copy_frame
from app.db.models import Generation, Lineage, RedesignPlan
from app.db.repo import GenerationInfo, generation_columns, generation_from_row

PLAN = cast(Table, RedesignPlan.__table__)
LINEAGE = cast(Table, Lineage.__table__)
LINEAGE_COLUMNS = ("old_code", "new_code", "area_share", "household_share")


@dataclass(frozen=True)
class PlanInfo:
    """A stored plan: what it redesigned, what was asked and how it scored."""

    generation_id: int
    source_label: str
    source_generation_id: int | None
    target: int
    mode: str
    weights: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    window_incidents: int | None = None


_PLAN_COLUMNS = [
    PLAN.c[name]
    for name in (
        "generation_id",
        "source_label",
        "source_generation_id",
        "target",
        "mode",
        "weights",
        "metrics",
        "baseline",
        "created_at",
        "window_start",
        "window_end",
        "window_incidents",
    )
]


def store_plan(conn: Connection, plan: PlanInfo) -> None:
    values = {column.name: getattr(plan, column.name) for column in _PLAN_COLUMNS}
    values.pop("created_at")
    conn.execute(insert(PLAN).values(**values))


def get_plan(conn: Connection, generation_id: int) -> PlanInfo | None:
    row = conn.execute(select(*_PLAN_COLUMNS).where(PLAN.c.generation_id == generation_id)).first()
    return None if row is None else PlanInfo(**row._mapping)


def list_plans(conn: Connection) -> list[tuple[GenerationInfo, PlanInfo]]:
    """Every plan with its generation, oldest first."""
    gen_columns = generation_columns()
    query = (
        select(*gen_columns, *[c.label(f"plan_{c.name}") for c in _PLAN_COLUMNS])
        .join_from(Generation, PLAN, PLAN.c.generation_id == Generation.id)
        .order_by(Generation.id)
    )
    out = []
    for row in conn.execute(query):
        mapping = row._mapping
        plan = PlanInfo(**{c.name: mapping[f"plan_{c.name}"] for c in _PLAN_COLUMNS})
        out.append((generation_from_row(row), plan))
    return out


def lineage_rows(conn: Connection, to_generation: int) -> list[dict]:
    """How the old grids map onto the grids of ``to_generation``, ordered by codes."""
    query = (
        select(*[LINEAGE.c[c] for c in LINEAGE_COLUMNS])
        .where(LINEAGE.c.to_generation == to_generation)
        .order_by(LINEAGE.c.old_code, LINEAGE.c.new_code)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def copy_lineage(
    conn: Connection, from_generation: int, to_generation: int, lineage: pd.DataFrame
) -> int:
    rows = lineage[list(LINEAGE_COLUMNS)].copy()
    # Shares are sums of float areas: keep them inside the CHECK's [0, 1].
    rows["area_share"] = np.clip(rows["area_share"].astype(float), 0.0, 1.0)
    rows.insert(0, "to_generation", to_generation)
    rows.insert(0, "from_generation", from_generation)
    return copy_frame(conn, "lineage", rows)


# -- the incidents a workload is counted over ------------------------------------------
def _in_window(start: datetime, end: datetime) -> list:
    return [INCIDENT.c.reported_at >= start, INCIDENT.c.reported_at < end]


def window_codes(
    conn: Connection, generation_id: int, start: datetime, end: datetime
) -> pd.DataFrame:
    """Grid and micro-grid codes, under a generation, of the incidents reported in
    [start, end)."""
    rows = conn.execute(
        select(ASSIGNMENT.c.grid_code, ASSIGNMENT.c.micro_grid_code)
        .join_from(ASSIGNMENT, INCIDENT, INCIDENT.c.id == ASSIGNMENT.c.incident_id)
        .where(ASSIGNMENT.c.generation_id == generation_id, *_in_window(start, end))
    ).all()
    return pd.DataFrame(rows, columns=["grid_code", "micro_grid_code"])


def window_locations(
    conn: Connection, start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon, lat of the located incidents reported in [start, end)."""
    rows = conn.execute(
        select(func.ST_X(INCIDENT.c.location), func.ST_Y(INCIDENT.c.location)).where(
            INCIDENT.c.location.isnot(None), *_in_window(start, end)
        )
    ).all()
    return np.array([r[0] for r in rows], dtype=float), np.array([r[1] for r in rows], dtype=float)
