"""A snapping suggestion: each unit redrawn as the union of the grids mostly inside it.

This is the boundary a department would get if it followed the comprehensive
grids. Each grid goes to the unit holding the largest share of it; the unit then
gains the parts of its grids that lay outside it and loses its parts of grids
that went to other units. Those areas and their households are what would
change hands, so the department can weigh the suggestion before adopting it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.crs import metric_crs
from gis.layers.crosswalk import Crosswalk

__all__ = ["SUGGESTION_COLUMNS", "suggest_snapping"]

#: One row per unit of the theme.
SUGGESTION_COLUMNS = [
    "code",
    "name",
    "grids",
    "area_m2",
    "suggested_area_m2",
    "area_gained_m2",
    "area_lost_m2",
    "households_gained",
    "households_lost",
    "geometry",
]


def suggest_snapping(
    crosswalk: Crosswalk, units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Per unit of ``units``: the union of its grids and what would change hands (EPSG:4326).

    ``crosswalk`` must have been built from these ``units`` and ``grids``.
    """
    pairs = crosswalk.pairs
    owner = crosswalk.grids.set_index("grid_code")["unit_code"].dropna()
    pair_owner = pairs["grid_code"].map(owner)
    keeps = pairs["unit_code"] == pair_owner
    # What the owning unit gains of a grid is what other units and no unit held of it.
    grid_info = crosswalk.grids.set_index("grid_code")
    owned = grid_info.loc[owner.index]
    kept = pairs[keeps].set_index("grid_code")
    gained_m2 = owned["area_m2"] - kept["shared_m2"].reindex(owned.index, fill_value=0.0)
    gained_hh = owned["households"] - kept["households"].reindex(owned.index, fill_value=0.0)
    lost = pairs[~keeps].groupby("unit_code")[["shared_m2", "households"]].sum()
    gains = (
        pd.DataFrame(
            {"unit_code": owner.to_numpy(), "m2": gained_m2.to_numpy(), "hh": gained_hh.to_numpy()}
        )
        .groupby("unit_code")[["m2", "hh"]]
        .sum()
    )
    codes = units["code"].astype(str)
    geometry = _unions(grids, owner, codes)
    result = gpd.GeoDataFrame(
        {
            "code": codes.to_numpy(),
            "name": units["name"].to_numpy() if "name" in units else None,
            "grids": owner.groupby(owner).size().reindex(codes, fill_value=0).to_numpy(),
            "area_m2": _unit_areas(units, grids),
            "suggested_area_m2": owned.groupby(owner)["area_m2"]
            .sum()
            .reindex(codes, fill_value=0.0)
            .to_numpy(),
            "area_gained_m2": gains["m2"].reindex(codes, fill_value=0.0).to_numpy(),
            "area_lost_m2": lost["shared_m2"].reindex(codes, fill_value=0.0).to_numpy(),
            "households_gained": gains["hh"].reindex(codes, fill_value=0.0).to_numpy(),
            "households_lost": lost["households"].reindex(codes, fill_value=0.0).to_numpy(),
        },
        geometry=gpd.GeoSeries(geometry, crs=4326),
    )
    return result[SUGGESTION_COLUMNS]


def _unions(grids: gpd.GeoDataFrame, owner: pd.Series, codes: pd.Series) -> list:
    by_code = grids.set_index(grids["code"].astype(str)).geometry.to_crs(4326)
    unions = []
    for code in codes:
        members = owner.index[owner.to_numpy() == code]
        unions.append(shapely.union_all(by_code.loc[members].to_numpy()) if len(members) else None)
    return unions


def _unit_areas(units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Each unit's own area in m², measured as the crosswalk measures (metric CRS of the grids)."""
    return units.geometry.to_crs(metric_crs(grids)).area.to_numpy()
