"""Argument, input and feasibility checks for :mod:`gis.redesign`.

Every message names the argument or column at fault and what would be
accepted; infeasible requests say which range is feasible and why.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.errors import CRSError, InfeasibleError, ValidationError
from gis.redesign.plan import Units

__all__ = [
    "check_int",
    "check_float",
    "check_choice",
    "check_weights",
    "check_nest",
    "check_band",
    "check_locked",
    "check_frame",
    "check_atoms",
    "column_or_zero",
    "weighted_load",
    "check_target",
    "band_floor",
    "check_band_feasible",
    "check_band_met",
    "dense_labels",
]


# -- parameters --------------------------------------------------------------------------------
def check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValidationError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def check_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) >= 0:
        raise ValidationError(f"{name} must be a number ≥ 0, got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValidationError(
            f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}"
        )
    return value


def check_weights(weights: Any) -> dict[str, float]:
    if not isinstance(weights, Mapping) or not weights:
        raise ValidationError(
            f"weights must be a non-empty mapping column → weight, got {weights!r}"
        )
    out = {}
    for key, value in weights.items():
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not isinstance(key, str) or not ok or not math.isfinite(value) or value < 0:
            raise ValidationError(
                f"weights[{key!r}] must be a finite number ≥ 0 keyed by a column name, "
                f"got {value!r}"
            )
        if value > 0:
            out[key] = float(value)
    if not out:
        raise ValidationError("weights must give at least one column a positive weight")
    return out


def check_nest(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValidationError(
        f"nest_within must be 'community', 'street', a column name or None; got {value!r}"
    )


def check_band(value: Any) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not 0 < value < 1:
        raise ValidationError(
            f"band must be a share of the mean in (0, 1), e.g. 0.2; got {value!r}"
        )
    return float(value)


def check_locked(value: Any) -> str | frozenset[str] | None:
    if value is None or value == "dedicated":
        return value
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"locked must be None, 'dedicated' or a collection of grid codes; got {value!r}"
        )
    return frozenset(str(code) for code in value)


# -- input frames ------------------------------------------------------------------------------
def check_frame(frame: Any, name: str, code: str) -> gpd.GeoDataFrame:
    """The frame with a fresh RangeIndex, or every problem found in one error."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise ValidationError(f"{name} must be a GeoDataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise ValidationError(f"{name} is empty")
    if frame.crs is None:
        raise CRSError(f"{name} has no CRS; set one (e.g. EPSG:4326) before a redesign")
    if code not in frame.columns:
        raise ValidationError(
            f"{name} has no code column {code!r}; columns are {list(frame.columns)}"
        )
    codes = frame[code]
    problems = [
        {"row": i, "reason": "missing code"} for i in np.flatnonzero(codes.isna().to_numpy())
    ]
    dup = codes[codes.duplicated(keep=False) & codes.notna()]
    problems += [{"row": i, "reason": f"duplicate code {c!r}"} for i, c in dup.items()]
    geoms = frame.geometry.to_numpy()
    bad = ~np.isin(shapely.get_type_id(geoms), (3, 6)) | shapely.is_empty(geoms)
    problems += [{"row": i, "reason": "not a (multi)polygon"} for i in np.flatnonzero(bad)]
    invalid = ~bad & ~shapely.is_valid(geoms)
    problems += [{"row": i, "reason": "invalid geometry"} for i in np.flatnonzero(invalid)]
    if problems:
        raise ValidationError(f"{name} cannot be redesigned", problems)
    return frame.reset_index(drop=True)


def check_atoms(atoms: Any, grids: gpd.GeoDataFrame, code: str, parent: str) -> gpd.GeoDataFrame:
    """Atoms in the grids' CRS, each pointing at a known grid, every grid with atoms."""
    atoms = check_frame(atoms, "atoms", code)
    if not pyproj.CRS(atoms.crs).equals(pyproj.CRS(grids.crs)):
        raise CRSError(
            f"atoms are in {atoms.crs.to_string()} but grids in {grids.crs.to_string()}; "
            "reproject one of them first"
        )
    if parent not in atoms.columns:
        raise ValidationError(f"atoms need a {parent!r} column: the code of their grid")
    known = set(grids[code].astype(str))
    parents = atoms[parent].astype(str)
    orphans = np.flatnonzero(~parents.isin(known).to_numpy())
    if len(orphans):
        raise ValidationError(
            "atoms point at grids that do not exist",
            [{"row": int(i), "reason": f"unknown grid {parents.iloc[i]!r}"} for i in orphans],
        )
    empty = sorted(known - set(parents))
    if empty:
        raise ValidationError(
            "every grid needs at least one atom, or its area would vanish from the plan",
            [{"row": c, "reason": "grid without atoms"} for c in empty],
        )
    return atoms


def column_or_zero(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[column], errors="coerce").fillna(0).to_numpy(dtype=float)


def weighted_load(
    frame: pd.DataFrame, weights: dict[str, float], area: np.ndarray, n_grids: int
) -> np.ndarray:
    """Workload per row: weighted columns, each divided by its mean per current grid."""
    load = np.zeros(len(frame))
    for column, weight in weights.items():
        values = area if column == "area" else _weight_column(frame, column)
        total = values.sum()
        if total > 0:
            # Divide by the mean per current grid so weights compare like with like.
            load += weight * values / (total / n_grids)
    return load


def _weight_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        hint = (
            " (incidents per year in each area, e.g. counted with gis.assign.GridIndex;"
            " or drop it from weights)"
            if column == "incidents"
            else ""
        )
        raise ValidationError(
            f"weights name column {column!r}, which the frame lacks{hint}; "
            f"columns are {list(frame.columns)}"
        )
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = np.flatnonzero((values.isna() | (values < 0)).to_numpy())
    if len(bad):
        raise ValidationError(
            f"column {column!r} must be numbers ≥ 0",
            [{"row": int(i), "reason": f"{column}={frame[column].iloc[i]!r}"} for i in bad],
        )
    return values.to_numpy(dtype=float)


# -- feasibility -------------------------------------------------------------------------------
def check_target(
    target: int, *, low: int, high: int, n_zones: int, n_locked: int, mode: str, nested: bool
) -> None:
    """Raise unless ``low <= target <= high``, saying why the range is what it is."""
    if low <= target <= high:
        return
    what = "grids" if mode == "merge" else "micro-grids"
    if target > high:
        reason = (
            f"{mode} mode cannot make more grids than its {high - n_locked} unlocked {what}"
            + (f" plus {n_locked} locked grids" if n_locked else "")
        )
    else:
        nest = "nesting unit" if nested else "connected part of the district"
        reason = (
            f"every {nest} needs at least one grid: {n_zones} connected pieces of unlocked areas"
            + (f" plus {n_locked} locked grids" if n_locked else "")
        )
    raise InfeasibleError(
        f"target {target} is infeasible: feasible targets are {low}–{high} ({reason})"
    )


def band_floor(
    units: Units, zones: np.ndarray, k_free: int, mu: float, noun: str
) -> tuple[float, str]:
    """Narrowest band any plan could meet (a lower bound) and what sets it.

    Two necessary conditions: an atom heavier than ``(1 + b) mu`` breaks the
    band whatever the plan; and every zone must take a whole number of grids
    whose mean lies in ``[(1 - b) mu, (1 + b) mu]``, with the counts adding up
    to the target.
    """
    free = zones >= 0
    n_z = int(zones.max()) + 1 if free.any() else 0
    load = np.bincount(zones[free], weights=units.load[free], minlength=n_z)
    atoms = np.bincount(zones[free], minlength=n_z)
    heavy = int(np.argmax(np.where(free, units.load, -np.inf)))
    heaviest = max(float(units.load[heavy]) / mu - 1.0, 0.0)

    def feasible(b: float) -> bool:
        lo = np.maximum(1, np.ceil(load / ((1 + b) * mu) - 1e-9))
        hi = atoms if b >= 1 else np.minimum(atoms, np.floor(load / ((1 - b) * mu) + 1e-9))
        return bool((lo <= hi).all() and lo.sum() <= k_free <= hi.sum())

    if feasible(heaviest):
        reason = (
            f"{noun} {units.codes[heavy]} cannot be divided and alone has "
            f"{units.load[heavy] / mu:.0%} of the mean workload"
        )
        return heaviest, reason
    low, high = heaviest, heaviest + 1.0
    while not feasible(high) and high < 1e6:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if feasible(mid) else (mid, high)
    reason = "some nesting unit's workload fits no whole number of grids within a narrower band"
    return high, reason


def check_band_feasible(band, units, zones, k_free, mu, noun) -> None:
    """Raise before searching when ``band`` is narrower than :func:`band_floor`."""
    floor, reason = band_floor(units, zones, k_free, mu, noun)
    if band < floor - 1e-12:
        raise InfeasibleError(
            f"band ±{band:.1%} is infeasible with {k_free} balanced grids: feasible bands "
            f"are ±{floor:.1%} or wider ({reason})"
        )


def check_band_met(band, units, labels, mu) -> None:
    """Raise when the plan found leaves a balanced grid outside ``band``."""
    k = int(labels.max()) + 1
    loads = np.bincount(labels, weights=units.load, minlength=k)
    has_locked = np.bincount(labels, weights=units.locked.astype(float), minlength=k) > 0
    dev = np.abs(loads[~has_locked] / mu - 1.0)
    if len(dev) and dev.max() > band + 1e-9:
        raise InfeasibleError(
            f"no plan within ±{band:.1%} was found: the best plan has "
            f"{int((dev > band + 1e-9).sum())} grid(s) outside it, the widest at "
            f"±{dev.max():.1%}; bands of ±{dev.max():.1%} or wider are feasible"
        )


def dense_labels(labels: Any, codes: np.ndarray, name: str) -> np.ndarray:
    """Labels 0..k-1 aligned with ``codes``, from a Series/mapping by code or an array."""
    if isinstance(labels, pd.Series | Mapping):
        series = pd.Series(labels)
        series.index = series.index.astype(str)
        missing = [c for c in codes if c not in series.index]
        if missing:
            raise ValidationError(f"{name} has no entry for {len(missing)} code(s): {missing[:5]}")
        values = series.reindex(codes).to_numpy()
    else:
        values = np.asarray(labels)
        if len(values) != len(codes):
            raise ValidationError(f"{name} has {len(values)} entries for {len(codes)} areas")
    if pd.isna(values).any():
        raise ValidationError(f"{name} has missing values: every area needs a region")
    _, dense = np.unique(values.astype(str), return_inverse=True)
    return dense.ravel()
