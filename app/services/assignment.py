"""Assigning stored incidents to the areas of a generation, in bulk.

Reads (id, lon, lat) in chunks, assigns them in memory with
``gis.hierarchy.HierarchyIndex`` and COPYs the results as new rows of
``incident_assignment`` (one row per incident and generation). Nothing is
updated in place: re-assigning a generation replaces that generation's rows,
and the rows of every other generation — the history — are never touched.
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


def assign_stored(
    engine: Engine,
    *,
    only_unassigned: bool = False,
    tolerance: float = 0.0,
    chunk_size: int = 250_000,
    progress: Progress | None = None,
    index: HierarchyIndex | None = None,
    dask: bool = False,
    scheduler: str | None = None,
) -> AssignReport:
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
            return assign_on(
                conn,
                gen,
                index,
                only_unassigned=only_unassigned,
                tolerance=tolerance,
                chunk_size=chunk_size,
                progress=progress,
            )
        from gis.distributed import assign_dask, dask_client

        with dask_client(scheduler) as client:
            return assign_on(
                conn,
                gen,
                index,
                only_unassigned=only_unassigned,
                tolerance=tolerance,
                chunk_size=chunk_size,
                progress=progress,
                assigner=lambda lon, lat: assign_dask(lon, lat, index, client, tolerance=tolerance),
            )


def assign_on(
    conn: Connection,
    gen: repo.GenerationInfo,
    index: HierarchyIndex,
    *,
    only_unassigned: bool = False,
    tolerance: float = 0.0,
    chunk_size: int = 250_000,
    progress: Progress | None = None,
    assigner: Assigner | None = None,
) -> AssignReport:
    """The work of :func:`assign_stored` inside the caller's transaction."""
    assigner = assigner or (lambda lon, lat: index.assign_xy(lon, lat, tolerance=tolerance))
    where = "i.location IS NOT NULL"
    if only_unassigned:
        where += (
            " AND NOT EXISTS (SELECT 1 FROM incident_assignment a "
            "WHERE a.incident_id = i.id AND a.generation_id = :g)"
        )
    else:
        conn.execute(
            text("DELETE FROM incident_assignment WHERE generation_id = :g"), {"g": gen.id}
        )
    total = conn.execute(
        text(f"SELECT count(*) FROM incident i WHERE {where}"), {"g": gen.id}
    ).scalar_one()
    counts: dict[str, int] = {}
    done, last_id = 0, 0
    while True:
        # Keyset paging on id: OFFSET would rescan the table for every chunk.
        rows = conn.execute(
            text(
                f"SELECT i.id, ST_X(i.location), ST_Y(i.location) FROM incident i "
                f"WHERE {where} AND i.id > :after ORDER BY i.id LIMIT :n"
            ),
            {"g": gen.id, "after": last_id, "n": chunk_size},
        ).all()
        if not rows:
            break
        ids, lon, lat = (np.array(column) for column in zip(*rows, strict=True))
        result = assigner(lon.astype(float), lat.astype(float))
        write_assignments(conn, ids, result, gen.id)
        for status, n in result["assign_status"].value_counts().items():
            counts[str(status)] = counts.get(str(status), 0) + int(n)
        last_id = int(ids[-1])
        done += len(rows)
        if progress:
            progress(done, total)
    return AssignReport(gen.label, done, counts)


def write_assignments(
    conn: Connection, incident_ids: np.ndarray, result: pd.DataFrame, generation_id: int
) -> int:
    """COPY assignment rows (``HierarchyIndex.assign_xy`` output) for one generation."""
    rows = result[[*CODE_COLUMNS, "assign_status", "distance_m"]].copy()
    rows.insert(0, "incident_id", np.asarray(incident_ids, dtype=np.int64))
    rows.insert(0, "generation_id", generation_id)
    return repo.copy_frame(conn, "incident_assignment", rows)


def activate_and_reassign(
    engine: Engine, generation: str, *, tolerance: float = 0.0, progress: Progress | None = None
) -> AssignReport:
    """Make ``generation`` active and assign every incident to it.

    Assignments under the previous generation stay as they are (the history);
    the switch and the new assignments commit together or not at all.
    """
    with engine.begin() as conn:
        gen = repo.get_generation(conn, generation)
        if gen is None:
            raise repo.NotFoundError(f"no generation {generation!r}")
        repo.activate_generation(conn, gen.id)
        return assign_on(
            conn, gen, load_hierarchy(conn, gen.id), tolerance=tolerance, progress=progress
        )
