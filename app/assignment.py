"""Assigning stored incidents to the areas of the active generation, in bulk.

Reads (id, lon, lat) in chunks, assigns them in memory with
``gis.hierarchy.HierarchyIndex`` and writes the codes back through COPY into a
temporary table and one ``UPDATE … FROM``: a million rows take seconds, where
an ORM update per row would take an hour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from app.db import repo
from gis.errors import GridmapError
from gis.hierarchy import ASSIGNED_LEVELS, HierarchyIndex

Progress = Callable[[int, int], None]
Assigner = Callable[[np.ndarray, np.ndarray], pd.DataFrame]
CODE_COLUMNS = list(ASSIGNED_LEVELS.values())


@dataclass
class AssignReport:
    generation: str
    assigned: int
    by_status: dict[str, int]


def load_hierarchy(conn: Connection, generation_id: int) -> HierarchyIndex:
    areas = repo.areas_frame(conn, generation_id, columns=("code", "level"))
    return HierarchyIndex(areas[areas["level"].isin(list(ASSIGNED_LEVELS))])


def assign_stored(engine: Engine, *, only_unassigned: bool = False, tolerance: float = 0.0,
                  chunk_size: int = 250_000, progress: Progress | None = None,
                  index: HierarchyIndex | None = None, dask: bool = False,
                  scheduler: str | None = None) -> AssignReport:
    """(Re-)assign located incidents to the active generation; returns counts by status.

    With ``dask``, each chunk is partitioned over a Dask cluster (``scheduler``
    address, or a LocalCluster) running the same index: same answer, more cores.
    """
    with engine.begin() as conn:
        gen = repo.active_generation(conn)
        if gen is None:
            raise GridmapError("no active generation: import areas or run `gridmap demo` first")
        index = index or load_hierarchy(conn, gen.id)
        if not dask:
            return assign_on(conn, gen, index, only_unassigned=only_unassigned,
                             tolerance=tolerance, chunk_size=chunk_size, progress=progress)
        from gis.distributed import assign_dask, dask_client

        with dask_client(scheduler) as client:
            return assign_on(conn, gen, index, only_unassigned=only_unassigned,
                             tolerance=tolerance, chunk_size=chunk_size, progress=progress,
                             assigner=lambda lon, lat: assign_dask(lon, lat, index, client,
                                                                   tolerance=tolerance))


def assign_on(conn: Connection, gen: repo.GenerationInfo, index: HierarchyIndex, *,
              only_unassigned: bool = False, tolerance: float = 0.0,
              chunk_size: int = 250_000, progress: Progress | None = None,
              assigner: Assigner | None = None) -> AssignReport:
    """The work of :func:`assign_stored` inside the caller's transaction."""
    assigner = assigner or (lambda lon, lat: index.assign_xy(lon, lat, tolerance=tolerance))
    where = "location IS NOT NULL"
    if only_unassigned:
        where += " AND (generation_id IS NULL OR generation_id <> :g)"
    total = conn.execute(text(f"SELECT count(*) FROM incident WHERE {where}"),
                         {"g": gen.id}).scalar_one()
    counts: dict[str, int] = {}
    done, last_id = 0, 0
    _create_stage(conn)
    while True:
        # Keyset paging on id: OFFSET would rescan the table for every chunk.
        rows = conn.execute(text(
            f"SELECT id, ST_X(location) AS lon, ST_Y(location) AS lat FROM incident "
            f"WHERE {where} AND id > :after ORDER BY id LIMIT :n"),
            {"g": gen.id, "after": last_id, "n": chunk_size}).all()
        if not rows:
            break
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        lon = np.fromiter((r[1] for r in rows), dtype=float, count=len(rows))
        lat = np.fromiter((r[2] for r in rows), dtype=float, count=len(rows))
        result = assigner(lon, lat)
        _write_chunk(conn, ids, result, gen.id)
        for status, n in result["assign_status"].value_counts().items():
            counts[str(status)] = counts.get(str(status), 0) + int(n)
        last_id = int(ids[-1])
        done += len(rows)
        if progress:
            progress(done, total)
    conn.execute(text("DROP TABLE IF EXISTS assign_stage"))
    return AssignReport(gen.label, done, counts)


def _create_stage(conn: Connection) -> None:
    conn.execute(text(
        "CREATE TEMP TABLE IF NOT EXISTS assign_stage (id bigint, street_code text, "
        "community_code text, grid_code text, micro_grid_code text, assign_status text, "
        "distance_m double precision) ON COMMIT DROP"))


def _write_chunk(conn: Connection, ids: np.ndarray, result: pd.DataFrame, generation_id: int
                 ) -> None:
    conn.execute(text("TRUNCATE assign_stage"))
    records = zip(ids.tolist(), *(result[c] for c in CODE_COLUMNS), result["assign_status"],
                  result["distance_m"], strict=True)
    repo.copy_rows(conn, "assign_stage", ("id", *CODE_COLUMNS, "assign_status", "distance_m"),
                   records)
    conn.execute(text(
        "UPDATE incident AS i SET street_code = s.street_code, "
        "community_code = s.community_code, grid_code = s.grid_code, "
        "micro_grid_code = s.micro_grid_code, assign_status = s.assign_status, "
        "distance_m = s.distance_m, generation_id = :g, assigned_at = now() "
        "FROM assign_stage AS s WHERE i.id = s.id"), {"g": generation_id})


def activate_and_reassign(engine: Engine, generation: str, *, tolerance: float = 0.0,
                          progress: Progress | None = None) -> AssignReport:
    """Make ``generation`` active and re-assign every incident, keeping the old assignment.

    The previous assignments move to ``incident_assignment_history`` in the same
    transaction as the switch, so history is never lost even if re-assignment
    fails (the whole activation then rolls back).
    """
    with engine.begin() as conn:
        gen = repo.get_generation(conn, generation)
        if gen is None:
            raise repo.NotFoundError(f"no generation {generation!r}")
        conn.execute(text(
            "INSERT INTO incident_assignment_history (incident_id, generation_id, street_code, "
            "community_code, grid_code, micro_grid_code, assign_status, distance_m, assigned_at) "
            "SELECT id, generation_id, street_code, community_code, grid_code, micro_grid_code, "
            "assign_status, distance_m, assigned_at FROM incident "
            "WHERE generation_id IS NOT NULL AND generation_id <> :g"), {"g": gen.id})
        repo.activate_generation(conn, gen.id)
        return assign_on(conn, gen, load_hierarchy(conn, gen.id), tolerance=tolerance,
                         progress=progress)
