"""Load the synthetic demo district (gis.demo) into PostGIS in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from app.db import repo
from app.db.models import Staff
from app.imports import import_areas_on
from gis.codes import LEVELS

DEMO_GENERATION = "demo"

Progress = Callable[[str, int, int], None]


@dataclass
class DemoLoadReport:
    generation: str
    counts: dict[str, int]
    staff: int
    already_loaded: bool


def load_demo(engine: Engine, demo, *, reload: bool = False,
              progress: Progress | None = None) -> DemoLoadReport:
    """Store ``demo`` (a gis.demo.DemoDistrict) as the active generation ``demo``.

    Idempotent: when the generation already holds the demo's areas nothing is
    written (unless ``reload``, which replaces them).
    """
    with engine.begin() as conn:
        existing = repo.get_generation(conn, DEMO_GENERATION)
        if existing and not reload and _matches(conn, existing.id, demo):
            return DemoLoadReport(DEMO_GENERATION, repo.counts_by_level(conn, existing.id),
                                  _staff_count(conn, existing.id), already_loaded=True)
        if existing is None:
            gen = repo.create_generation(conn, DEMO_GENERATION, note=f"synthetic demo district, "
                                         f"seed {demo.seed}", activate=True)
        else:
            gen = existing
            repo.activate_generation(conn, gen.id)
        frames = {"district": demo.district, "street": demo.streets,
                  "community": demo.communities, "grid": demo.grids,
                  "micro_grid": demo.micro_grids}
        for step, level in enumerate(LEVELS, start=1):
            if progress:
                progress(f"areas: {level}", step, len(LEVELS) + 1)
            import_areas_on(conn, frames[level], level, source=f"gis.demo seed={demo.seed}",
                            generation=DEMO_GENERATION, replace=True, code_field="code",
                            parent_field="parent_code" if level != "district" else None,
                            name_field="name", kind_field="kind")
        if progress:
            progress("staff", len(LEVELS) + 1, len(LEVELS) + 1)
        staff = _store_staff(conn, demo.staff, gen.id)
        return DemoLoadReport(DEMO_GENERATION, repo.counts_by_level(conn, gen.id), staff,
                              already_loaded=False)


def _matches(conn, generation_id: int, demo) -> bool:
    wanted = {"district": len(demo.district), "street": len(demo.streets),
              "community": len(demo.communities), "grid": len(demo.grids),
              "micro_grid": len(demo.micro_grids)}
    return (repo.counts_by_level(conn, generation_id) == wanted
            and _staff_count(conn, generation_id) == len(demo.staff))


def _store_staff(conn, staff, generation_id: int) -> int:
    conn.execute(Staff.__table__.delete().where(Staff.generation_id == generation_id))
    rows = zip(staff["name"], staff["role"], staff["area_code"], [generation_id] * len(staff),
               staff["phone"], strict=True)
    return repo.copy_rows(conn, "staff", ("name", "role", "area_code", "generation_id", "phone"),
                          rows)


def _staff_count(conn, generation_id: int) -> int:
    return conn.execute(select(func.count()).select_from(Staff).where(
        Staff.generation_id == generation_id)).scalar_one()
