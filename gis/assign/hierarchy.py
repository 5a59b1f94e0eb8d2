"""Assignment to the whole hierarchy: street, community, grid and micro-grid at once.

Each level gets its own :class:`gis.assign.GridIndex`, so a point in a gap of
the grid layer still gets its community and street, and a defect at one level
never hides the answer of another. The status and distance reported for an
incident are those of the grid level: the unit that handles it.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.assign.index import GridIndex
from gis.errors import GridmapError

__all__ = ["ASSIGNED_COLUMNS", "ASSIGNED_LEVELS", "HierarchyIndex"]

#: Levels an incident is assigned to, with the column each fills.
ASSIGNED_LEVELS = {
    "street": "street_code",
    "community": "community_code",
    "grid": "grid_code",
    "micro_grid": "micro_grid_code",
}
#: Columns of :meth:`HierarchyIndex.assign_xy`: the code of every level, then the
#: status and distance of the grid level (the unit that handles an incident).
ASSIGNED_COLUMNS = (*ASSIGNED_LEVELS.values(), "assign_status", "distance_m")


class HierarchyIndex:
    """One GridIndex per level of an area set.

    Parameters
    ----------
    areas : GeoDataFrame
        Areas of one generation with columns ``level`` and ``code`` (EPSG:4326).
        Levels without areas are skipped (their codes stay null).
    """

    def __init__(self, areas: gpd.GeoDataFrame):
        if "level" not in areas or "code" not in areas:
            raise GridmapError("areas need 'level' and 'code' columns")
        #: (minx, miny, maxx, maxy) of all areas: the jurisdiction's extent.
        self.bounds = tuple(float(v) for v in areas.total_bounds)
        self.indexes: dict[str, GridIndex] = {}
        for level in ASSIGNED_LEVELS:
            layer = areas[areas["level"] == level]
            if len(layer):
                self.indexes[level] = GridIndex(layer[["code", "geometry"]], code="code")
        if "grid" not in self.indexes:
            raise GridmapError("the generation has no grids to assign incidents to")

    @property
    def grid_index(self) -> GridIndex:
        return self.indexes["grid"]

    def assign_arrays(self, lon, lat, tolerance: float = 0.0) -> dict[str, np.ndarray]:
        """:meth:`assign_xy` as a dict of NumPy arrays (no pandas: for hot paths)."""
        lon = np.asarray(lon, dtype=float)
        out: dict[str, np.ndarray] = {}
        for level, column in ASSIGNED_LEVELS.items():
            index = self.indexes.get(level)
            if index is None:
                out[column] = np.full(len(lon), None, dtype=object)
                continue
            codes, status, distance = index.assign_arrays(lon, lat, tolerance)
            out[column] = codes
            if level == "grid":
                out["assign_status"], out["distance_m"] = status, distance
        return out

    def assign_point(self, lon: float, lat: float, tolerance: float = 0.0) -> dict:
        """One WGS84 point, every level, as scalars (see ``GridIndex.assign_point``)."""
        out: dict = {}
        for level, column in ASSIGNED_LEVELS.items():
            index = self.indexes.get(level)
            code, status, distance = (
                index.assign_point(lon, lat, tolerance) if index else (None, None, math.nan)
            )
            out[column] = code
            if level == "grid":
                out["assign_status"], out["distance_m"] = status, distance
        return out

    def assign_xy(self, lon: np.ndarray, lat: np.ndarray, tolerance: float = 0.0) -> pd.DataFrame:
        """Codes of every level for WGS84 points, plus the grid's status and distance.

        Returns a DataFrame with the :data:`ASSIGNED_COLUMNS`: one per
        :data:`ASSIGNED_LEVELS` value, then ``assign_status`` and ``distance_m``.
        Tolerance snapping applies to every level, so a point snapped to a grid
        also gets that grid's community.
        """
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        out = pd.DataFrame(index=np.arange(len(lon)))
        for level, column in ASSIGNED_LEVELS.items():
            index = self.indexes.get(level)
            if index is None:
                out[column] = None
                continue
            result = index.assign_xy(lon, lat, tolerance=tolerance)
            out[column] = result["code"].to_numpy()
            if level == "grid":
                out["assign_status"] = result["status"].to_numpy()
                out["distance_m"] = result["distance_m"].to_numpy()
        return out[list(ASSIGNED_COLUMNS)]
