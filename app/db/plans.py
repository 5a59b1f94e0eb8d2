"""Redesign plans (table ``redesign_plan``) and the lineage of their grids."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table, insert, select

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
