"""Assigning stored incidents to the areas of a generation, in bulk.

Reads (id, lon, lat) in chunks through binary COPY, assigns them in memory with
``gis.hierarchy.HierarchyIndex`` and COPYs the results (binary) as new rows of
``incident_assignment`` (one row per incident and generation); for a load as
large as the table, its secondary indexes are rebuilt once at the end
(:func:`app.db.bulk.deferred_indexes`). Nothing is
updated in place: re-assigning a generation replaces that generation's rows,
and the rows of every other generation — the history — are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from app.db import assignments, bulk, repo
from app.errors import NotFoundError
from app.services.index_store import IndexStore, build_hierarchy
from gis.assign import HierarchyIndex
from gis.errors import GridmapError

Progress = Callable[[int, int], None]
Assigner = Callable[[np.ndarray, np.ndarray], pd.DataFrame]


@dataclass
class AssignReport:
    generation: str
    assigned: int
    by_status: dict[str, int]


def load_hierarchy(
    conn: Connection, generation_id: int, indexes: IndexStore | None = None
) -> HierarchyIndex:
    """The lookup index of a generation: from ``indexes`` (built and kept there when
    missing) or, without a store, built now."""
    if indexes is not None:
        return indexes.hierarchy(conn, generation_id)
    return build_hierarchy(conn, generation_id)


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
    indexes: IndexStore | None = None,
) -> AssignReport:
    """(Re-)assign located incidents to the active generation; returns counts by status.

    With ``dask``, each chunk is partitioned over a Dask cluster (``scheduler``
    address, or a LocalCluster) running the same index: same answer, more cores.
    ``indexes``: where the built lookup index is kept between runs.
    """
    with engine.begin() as conn:
        gen = repo.active_generation(conn)
        if gen is None:
            raise GridmapError("no active generation: import areas or run `gridmap demo` first")
        index = index or load_hierarchy(conn, gen.id, indexes)
        with ExitStack() as stack:
            assigner = _dask_assigner(stack, index, scheduler, tolerance) if dask else None
            return assign_on(
                conn,
                gen,
                index,
                only_unassigned=only_unassigned,
                tolerance=tolerance,
                chunk_size=chunk_size,
                progress=progress,
                assigner=assigner,
            )


def _dask_assigner(
    stack: ExitStack, index: HierarchyIndex, scheduler: str | None, tolerance: float
) -> Assigner:
    """Assign over a Dask cluster that stays up until ``stack`` closes."""
    from gis.assign.distributed import assign_dask, dask_client

    client = stack.enter_context(dask_client(scheduler))
    return lambda lon, lat: assign_dask(lon, lat, index, client, tolerance=tolerance)


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
    assigner = assigner or (lambda lon, lat: _assigned_frame(index, lon, lat, tolerance))
    total = assignments.count_to_assign(conn, gen.id, only_unassigned)
    if not only_unassigned:
        _clear(conn, gen.id, total)
    counts: dict[str, int] = {}
    done, last_id = 0, 0
    with bulk.deferred_indexes(conn, ("incident_assignment",), total):
        while True:
            ids, lon, lat = assignments.locations_after(
                conn, gen.id, only_unassigned, last_id, chunk_size
            )
            if len(ids) == 0:
                break
            result = assigner(lon, lat)
            assignments.copy_assignments(conn, ids, result, gen.id)
            for status, n in result["assign_status"].value_counts().items():
                counts[str(status)] = counts.get(str(status), 0) + int(n)
            last_id = int(ids[-1])
            done += len(ids)
            if progress:
                progress(done, total)
    return AssignReport(gen.label, done, counts)


def _assigned_frame(
    index: HierarchyIndex, lon: np.ndarray, lat: np.ndarray, tolerance: float
) -> pd.DataFrame:
    """:meth:`HierarchyIndex.assign_xy` with the codes left as object arrays.

    A DataFrame built from them would turn each code column into pandas' Arrow
    strings (a Python pass over a million values) only for the COPY to read the
    text back out: the plain arrays go to Arrow once, in C.
    """
    arrays = index.assign_arrays(lon, lat, tolerance=tolerance)
    return pd.DataFrame(
        {
            c: pd.Series(v, dtype=v.dtype if v.dtype.kind == "f" else object)
            for c, v in arrays.items()
        }
    )


def _clear(conn: Connection, generation_id: int, total: int) -> None:
    """Remove the generation's assignments before all ``total`` are assigned again.

    For a load large enough to lock the table anyway (its indexes are rebuilt,
    :func:`app.db.bulk.deferred_indexes`) and a table holding no other
    generation's rows (no history yet), TRUNCATE empties it at once, where
    DELETE would write a million dead rows for VACUUM. Both are undone if the
    assignment fails.
    """
    others = conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM incident_assignment WHERE generation_id <> :g)"),
        {"g": generation_id},
    ).scalar_one()
    if total >= bulk.DEFER_INDEXES_FROM and not others:
        conn.execute(text("TRUNCATE incident_assignment"))
    else:
        assignments.clear_assignments(conn, generation_id)


def activate_and_reassign(
    engine: Engine,
    generation: str,
    *,
    tolerance: float = 0.0,
    progress: Progress | None = None,
    indexes: IndexStore | None = None,
) -> AssignReport:
    """Make ``generation`` active and assign every incident to it.

    Assignments under the previous generation stay as they are (the history);
    the switch and the new assignments commit together or not at all.
    """
    with engine.begin() as conn:
        gen = repo.get_generation(conn, generation)
        if gen is None:
            raise NotFoundError(f"no generation {generation!r}")
        repo.activate_generation(conn, gen.id)
        return assign_on(
            conn,
            gen,
            load_hierarchy(conn, gen.id, indexes),
            tolerance=tolerance,
            progress=progress,
        )
