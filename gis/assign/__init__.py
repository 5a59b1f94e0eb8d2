"""Point-in-polygon assignment with the answer PostGIS would give.

* :class:`GridIndex` and :func:`assign_points` (:mod:`gis.assign.index`, with the
  cell pre-index of :mod:`gis.assign.cells`) assign points to one layer of grids;
* :class:`HierarchyIndex` (:mod:`gis.assign.hierarchy`) assigns them to street,
  community, grid and micro-grid at once;
* :mod:`gis.assign.distributed` runs the same index on a Dask cluster (Dask is
  imported only when it is used).

The rules (covering grid with the smallest code, boundary, snapping, outside)
are in :mod:`gis.assign.index` and ``docs/assignment.md``.
"""

from __future__ import annotations

from gis.assign import distributed
from gis.assign.hierarchy import ASSIGNED_COLUMNS, ASSIGNED_LEVELS, HierarchyIndex
from gis.assign.index import STATUSES, GridIndex, assign_points

__all__ = [
    "ASSIGNED_COLUMNS",
    "ASSIGNED_LEVELS",
    "STATUSES",
    "GridIndex",
    "HierarchyIndex",
    "assign_points",
    "distributed",
]
