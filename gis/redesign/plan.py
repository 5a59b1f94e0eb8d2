"""Units, metrics, new-grid geometry, codes and lineage for :mod:`gis.redesign`.

A redesign works on *units*: the atoms that move (whole grids in merge mode,
micro-grids in reshape mode) with their old grid, nesting unit, workload and
metric geometry. Every plan — ours, the greedy baseline, a spopt labelling —
is judged by the same :func:`plan_metrics` on the same units, so comparisons
are like for like.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.optimize import linear_sum_assignment

from gis.codes import CodeScheme
from gis.redesign.graph import Adjacency, region_components

__all__ = [
    "METRIC_KEYS",
    "REPORT_BAND",
    "Units",
    "plan_metrics",
    "dissolve",
    "new_grid_codes",
    "new_grids_frame",
    "lineage",
    "continuation",
]

#: Band used for ``within_band`` when no band constraint was requested.
REPORT_BAND = 0.2
#: Keys of every metrics dict, in order.
METRIC_KEYS = (
    "k",
    "cv",
    "max_mean",
    "min_mean",
    "within_band",
    "pp_mean",
    "pp_min",
    "contiguity_violations",
    "nesting_violations",
    "households_kept",
    "area_kept",
)


@dataclass
class Units:
    """The atoms of a redesign, aligned arrays (one entry per atom).

    Attributes
    ----------
    codes : ndarray of str
        Atom codes (grid codes in merge mode).
    grid : ndarray of int
        Index of each atom's old grid in ``grids``.
    grids : GeoDataFrame
        The old grids, in input order, with a default RangeIndex.
    code : str
        Code column of ``grids``.
    geoms, metric : ndarray of shapely geometries
        Atom geometry in the input CRS and in ``metric_crs``.
    area, households, population, load : ndarray of float
        Area (m²), households, population (zeros when the column is absent)
        and workload.
    nest : ndarray of int or None
        Nesting unit of each atom; None when nesting is not requested.
    community : ndarray of object or None
        Parent (community) code of each atom's old grid, for numbering.
    locked : ndarray of bool
        Atom belongs to a locked grid.
    adjacency : Adjacency
        Rook adjacency of the atoms in ``metric_crs``.
    has_households, has_population : bool
    crs, metric_crs : pyproj.CRS
    """

    codes: np.ndarray
    grid: np.ndarray
    grids: gpd.GeoDataFrame
    code: str
    geoms: np.ndarray
    metric: np.ndarray
    area: np.ndarray
    households: np.ndarray
    population: np.ndarray
    load: np.ndarray
    nest: np.ndarray | None
    community: np.ndarray | None
    locked: np.ndarray
    adjacency: Adjacency
    has_households: bool
    has_population: bool
    crs: object
    metric_crs: object

    @property
    def n(self) -> int:
        return len(self.codes)


# -- metrics ---------------------------------------------------------------------------------
def plan_metrics(
    units: Units, labels: np.ndarray, band: float | None, region_metric: np.ndarray | None = None
) -> dict[str, float]:
    """Balance, compactness, constraint and stability metrics of a labelling.

    Balance (``cv``, ``max_mean``, ``min_mean``, ``within_band``) is measured
    over the regions without a locked atom: a locked grid's workload is fixed
    by request, not by the plan. ``region_metric`` are the dissolved regions
    in the metric CRS when the caller has them already.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    loads = np.bincount(labels, weights=units.load, minlength=k)
    has_locked = np.bincount(labels, weights=units.locked.astype(float), minlength=k) > 0
    balanced = loads[~has_locked]
    mean = balanced.mean() if len(balanced) else np.nan
    ratio = balanced / mean
    half = REPORT_BAND if band is None else band
    pieces = region_components(units.adjacency, labels)
    geoms = dissolve(units.metric, labels) if region_metric is None else region_metric
    pp = 4.0 * np.pi * shapely.area(geoms) / shapely.length(geoms) ** 2
    kept_hh, kept_area = _kept_shares(units, labels)
    return {
        "k": k,
        "cv": float(balanced.std() / mean) if len(balanced) else np.nan,
        "max_mean": float(ratio.max()) if len(balanced) else np.nan,
        "min_mean": float(ratio.min()) if len(balanced) else np.nan,
        "within_band": float(np.mean(np.abs(ratio - 1.0) <= half + 1e-9))
        if len(balanced)
        else np.nan,
        "pp_mean": float(pp.mean()),
        "pp_min": float(pp.min()),
        "contiguity_violations": int((pieces > 1).sum()),
        "nesting_violations": _nesting_violations(units, labels, k),
        "households_kept": kept_hh,
        "area_kept": kept_area,
    }


def _nesting_violations(units: Units, labels: np.ndarray, k: int) -> int:
    if units.nest is None:
        return 0
    pairs = np.unique(np.stack([labels, units.nest]), axis=1)
    return int((np.bincount(pairs[0], minlength=k) > 1).sum())


def continuation(units: Units, labels: np.ndarray) -> np.ndarray:
    """Old grid index each new region continues (-1 for a new grid).

    A one-to-one matching of old and new grids that keeps the most households
    (area breaks ties, and decides alone without a households column): a
    household keeps its grid when its new grid is the one matched to its old
    grid. Matching, rather than "largest share", stops two new grids from both
    claiming to be the same old one after a split.
    """
    k = int(labels.max()) + 1
    n_old = len(units.grids)
    hh = np.zeros((n_old, k))
    area = np.zeros((n_old, k))
    np.add.at(hh, (units.grid, labels), units.households)
    np.add.at(area, (units.grid, labels), units.area)
    score = hh / max(units.households.sum(), 1.0) + 1e-3 * area / units.area.sum()
    rows, cols = linear_sum_assignment(score, maximize=True)
    home = np.full(k, -1, dtype=np.int64)
    overlapping = score[rows, cols] > 0
    home[cols[overlapping]] = rows[overlapping]
    return home


def _kept_shares(units: Units, labels: np.ndarray) -> tuple[float, float]:
    home = continuation(units, labels)
    kept = home[labels] == units.grid
    total_hh = units.households.sum()
    hh = (
        float(units.households[kept].sum() / total_hh)
        if units.has_households and total_hh
        else np.nan
    )
    return hh, float(units.area[kept].sum() / units.area.sum())


# -- geometry and codes -----------------------------------------------------------------------
def dissolve(geoms: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Union of the atoms of every label (index = label value).

    Atoms of a clean coverage share edges exactly, so the coverage union is
    both much faster than a general union and exact; it falls back to the
    general union when the result is invalid (atoms that overlap or leave gaps).
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(int(labels.max()) + 2))
    out = np.empty(len(bounds) - 1, dtype=object)
    for r in range(len(out)):
        members = geoms[order[bounds[r] : bounds[r + 1]]]
        union = members[0] if len(members) == 1 else shapely.coverage_union_all(members)
        if not shapely.is_valid(union):
            union = shapely.make_valid(shapely.union_all(members))
        out[r] = union
    return out


def new_grid_codes(
    units: Units, labels: np.ndarray, geoms: np.ndarray, scheme: CodeScheme
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and parent codes of the new grids.

    With community codes, each new grid belongs to the community holding most
    of its households (its only one under community nesting) and is numbered
    west → east, north → south inside it. Without them the grids are numbered
    1…k in reading order over the whole plan.
    """
    k = len(geoms)
    if units.community is None:
        from gis.codes import reading_order

        width = len(str(k))
        codes = np.empty(k, dtype=object)
        codes[reading_order(geoms)] = [str(i + 1).zfill(width) for i in range(k)]
        return codes, np.full(k, None, dtype=object)
    parent = _majority(units.community, labels, units.households + 1e-9 * units.area, k)
    codes = np.empty(k, dtype=object)
    for community in pd.unique(parent):
        idx = np.flatnonzero(parent == community)
        codes[idx] = scheme.number_children(str(community), list(geoms[idx]))
    return codes, parent


def _majority(values: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    frame = pd.DataFrame({"label": labels, "value": values, "weight": weights})
    sums = frame.groupby(["label", "value"], sort=True)["weight"].sum().reset_index()
    best = sums.sort_values(["label", "weight"], ascending=[True, False]).drop_duplicates("label")
    out = np.empty(k, dtype=object)
    out[best["label"].to_numpy()] = best["value"].to_numpy()
    return out


def lineage(units: Units, labels: np.ndarray, new_codes: np.ndarray) -> pd.DataFrame:
    """How every old grid's area and households split among the new grids.

    ``area_share`` sums to 1 over each old grid; so does ``household_share``,
    which falls back to the area share for an old grid without households.
    """
    frame = pd.DataFrame(
        {
            "old": units.grid,
            "new": labels,
            "area": units.area,
            "households": units.households,
        }
    )
    pieces = frame.groupby(["old", "new"], sort=True)[["area", "households"]].sum().reset_index()
    totals = pieces.groupby("old")[["area", "households"]].transform("sum")
    area_share = pieces["area"] / totals["area"]
    with np.errstate(invalid="ignore", divide="ignore"):
        hh_share = pieces["households"] / totals["households"]
    hh_share = hh_share.where(totals["households"] > 0, area_share)
    old_codes = units.grids[units.code].to_numpy()
    out = pd.DataFrame(
        {
            "old_code": old_codes[pieces["old"].to_numpy()],
            "new_code": new_codes[pieces["new"].to_numpy()],
            "area_share": area_share.to_numpy(),
            "household_share": hh_share.to_numpy(),
        }
    )
    return out.sort_values(["old_code", "new_code"], ignore_index=True)


def new_grids_frame(
    units: Units, labels: np.ndarray, geoms: np.ndarray, codes: np.ndarray, parents: np.ndarray
) -> gpd.GeoDataFrame:
    """The new grids: codes, names and staff of the grid each continues, sums, geometry."""
    k = len(geoms)
    grids = units.grids
    home = continuation(units, labels)
    continues = np.where(
        home >= 0, grids[units.code].astype(str).to_numpy()[np.maximum(home, 0)], None
    )
    frame = pd.DataFrame(
        {
            "code": codes,
            "name": _from_home(grids, "name", home),
            "level": "grid",
            "kind": _kinds(units, labels, k),
            "parent_code": parents,
        }
    )
    if units.has_households:
        frame["households"] = np.bincount(labels, weights=units.households, minlength=k)
    if units.has_population:
        frame["population"] = np.bincount(labels, weights=units.population, minlength=k)
    frame["responsible"] = _from_home(grids, "responsible", home)
    frame["workload"] = np.bincount(labels, weights=units.load, minlength=k)
    frame["continues"] = continues
    old_pairs = np.unique(np.stack([labels, units.grid]), axis=1)
    frame["n_old"] = np.bincount(old_pairs[0], minlength=k)
    out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=units.crs))
    return out.sort_values("code", ignore_index=True)


def _from_home(grids: gpd.GeoDataFrame, column: str, home: np.ndarray) -> np.ndarray:
    if column not in grids.columns:
        return np.full(len(home), None, dtype=object)
    values = grids[column].to_numpy(dtype=object)
    return np.asarray(np.where(home >= 0, values[np.maximum(home, 0)], None))


def _kinds(units: Units, labels: np.ndarray, k: int) -> np.ndarray:
    """``dedicated`` when every old grid in the new one was dedicated, else comprehensive."""
    if "kind" not in units.grids.columns:
        return np.full(k, "comprehensive", dtype=object)
    dedicated = (units.grids["kind"] == "dedicated").to_numpy()[units.grid]
    all_dedicated = np.bincount(labels, weights=(~dedicated).astype(float), minlength=k) == 0
    return np.where(all_dedicated, "dedicated", "comprehensive").astype(object)
