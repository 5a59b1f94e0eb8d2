"""Where incidents concentrate: per-grid counts, Getis-Ord Gi* hot spots, heat, trends.

- :func:`grid_counts` — incidents per grid for a time window, category and
  source, with the rate per 1,000 residents and per km².
- :class:`HotSpots` — Getis-Ord Gi* (``esda.G_Local(star=True)``) on contiguity
  weights, with ArcGIS-style confidence bins and optional FDR.
- :func:`kernel_density` — a Gaussian kernel density surface for a heat layer.
- :class:`EmergingHotSpots` — monthly (or any frequency) Gi* plus a
  Mann–Kendall trend per grid, classed as in ArcGIS Emerging Hot Spot Analysis.

Conventions shared by the estimators (DOMAIN.md §4, ArcGIS Hot Spot Analysis):

- Gi* uses binary contiguity weights with the grid itself included
  (``transform="B"``): for binary weights esda's analytical z-score is exactly
  Getis and Ord's Gi*, which is what ArcGIS reports. (With row-standardised
  weights esda would use the binary variance formula on non-binary weights.)
- ``p_`` is two-sided, as ArcGIS's p-values and confidence levels are. With
  permutations it is the two-sided conditional-permutation pseudo p-value
  ``min(1, 2 (min(#sim >= G, #sim <= G) + 1) / (permutations + 1))`` computed
  from esda's simulations (so it does not depend on esda's changing default
  for ``alternative``); the smallest reachable value is ``2 / (permutations +
  1)``: 199 permutations are the fewest that can reach the 99 % bin. With
  ``permutations=0`` it is the normal approximation ``2 (1 - Φ(|z|))``, as in
  ArcGIS.
- Bins: ``±3`` when p <= 0.01 (99 % confidence), ``±2`` when p <= 0.05,
  ``±1`` when p <= 0.10, else 0; the sign is the sign of z. ``alpha`` caps the
  levels used (``alpha=0.05`` never gives ``±1``).
- FDR (``fdr=True``) follows ArcGIS: the false discovery rate is controlled
  separately at each confidence level, i.e. the cut-off of level ``a`` is
  ``esda.fdr(p, a)`` (Benjamini–Hochberg) instead of ``a``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import ndimage
from scipy.special import ndtr  # the normal CDF, without importing all of scipy.stats

from gis.assign import GridIndex
from gis.coverage import incident_lonlat, resolve_metric_crs, utm_crs
from gis.errors import CRSError, ValidationError

if TYPE_CHECKING:
    import libpysal

# esda and libpysal take seconds to import (they pull in scikit-learn and
# more), so they are imported on first use: `import gis` and the API stay fast.

__all__ = [
    "CONFIDENCE_LEVELS",
    "EMERGING_CLASSES",
    "grid_counts",
    "contiguity_weights",
    "gi_star",
    "confidence_bins",
    "HotSpots",
    "DensitySurface",
    "kernel_density",
    "mann_kendall",
    "classify_emerging",
    "EmergingHotSpots",
]

#: Confidence bin -> the largest two-sided p-value it takes (90, 95, 99 %).
CONFIDENCE_LEVELS: dict[int, float] = {3: 0.01, 2: 0.05, 1: 0.10}
#: Classes of :class:`EmergingHotSpots`, ArcGIS's hot spot patterns and "none".
EMERGING_CLASSES: tuple[str, ...] = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
    "none",
)
_WEIGHTS = ("queen", "rook")
_ISLANDS = ("nearest", "keep")
_DEFAULT_TOLERANCE_M = 1.0
_MAX_CELLS = 4_000_000
_SHARE_HOT = 0.9  # ArcGIS: "at least ninety percent of the time-step intervals"


# -- counts --------------------------------------------------------------------------
def grid_counts(
    incidents: pd.DataFrame,
    grids: gpd.GeoDataFrame,
    start: Any = None,
    end: Any = None,
    category: str | list[str] | None = None,
    source: str | list[str] | None = None,
    population_col: str | None = "population",
    *,
    code: str = "code",
    time_col: str = "reported_at",
    metric_crs: Any = None,
) -> gpd.GeoDataFrame:
    """Incidents per grid, per 1,000 residents and per km², for a selection of incidents.

    Parameters
    ----------
    incidents : pandas.DataFrame
        With a ``grid_code`` column (used as is), or else coordinates that
        :func:`gis.coverage.incident_lonlat` reads (``lon``/``lat`` with an
        optional ``crs`` column, or point geometries), assigned to ``grids``
        with :class:`gis.assign.GridIndex` (covers rule, no snapping).
    grids : geopandas.GeoDataFrame
        Grids with unique codes in ``code``, a CRS and, unless
        ``population_col`` is None, a population column.
    start, end : str, datetime or Timestamp, optional
        Half-open window ``start <= time < end`` on ``time_col``. Naive bounds
        are read in the time column's time zone.
    category : str or list of str, optional
        Category codes; a code matches itself and every code it prefixes, so
        ``"04"`` selects the whole public-safety class.
    source : str or list of str, optional
        Sources to keep (exact match).
    population_col : str or None, default "population"
        Residents per grid for ``rate_per_1000``; None for no rate.
    code : str, default "code"
        Column of ``grids`` with the grid codes.
    time_col : str, default "reported_at"
        Column of ``incidents`` with the report time (needed only with
        ``start``/``end``).
    metric_crs : anything pyproj.CRS accepts, optional
        Projected CRS in metres for the grid areas; default: the UTM zone.

    Returns
    -------
    geopandas.GeoDataFrame
        The grids' index and CRS, columns ``code``, ``count``, ``population``
        (when given), ``rate_per_1000`` (NaN where population is 0 or
        missing), ``area_km2``, ``per_km2`` and ``geometry``.
        ``attrs["selected"]`` is the number of incidents selected and
        ``attrs["unassigned"]`` how many of them no grid took (unlocated,
        outside every grid, or a ``grid_code`` not in ``grids``).

    Raises
    ------
    ValidationError
        For missing columns, a bad time window, or incidents without
        ``grid_code`` or coordinates.
    """
    codes, geoms = _checked_grids(grids, code)
    population = _population(grids, population_col)
    mask = _selection(incidents, start, end, category, source, time_col)
    taken = _incident_grid_codes(incidents, mask, grids, code)
    counts = pd.Series(taken).value_counts().reindex(codes, fill_value=0)
    area_km2 = shapely.area(_to_metric(geoms, grids.crs, metric_crs)[0]) / 1e6
    out = {"code": codes, "count": counts.to_numpy(dtype=np.int64)}
    if population is not None:
        out["population"] = population
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = 1000.0 * out["count"] / population
        out["rate_per_1000"] = np.where(population > 0, rate, np.nan)
    out["area_km2"] = area_km2
    out["per_km2"] = out["count"] / area_km2
    frame = gpd.GeoDataFrame(out, geometry=geoms, crs=grids.crs, index=grids.index)
    frame.attrs.update(selected=int(mask.sum()), unassigned=int(mask.sum() - counts.sum()))
    return frame


def _checked_grids(grids: Any, code: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValidationError(f"grids must be a GeoDataFrame, got {type(grids).__name__}")
    if code not in grids:
        raise ValidationError(f"grids has no column code={code!r}")
    if grids.crs is None:
        raise CRSError("grids has no CRS; set it with set_crs(...)")
    codes = grids[code]
    if codes.isna().any() or codes.duplicated().any():
        raise ValidationError(f"grid codes in {code!r} must be unique and not missing")
    geoms = np.asarray(grids.geometry.array, dtype=object)
    if shapely.is_missing(geoms).any() or shapely.is_empty(geoms).any():
        raise ValidationError("every grid needs a non-empty geometry")
    return codes.astype(str).to_numpy(dtype=object), geoms


def _population(grids: gpd.GeoDataFrame, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    if column not in grids:
        raise ValidationError(
            f"grids has no column population_col={column!r}; pass population_col=None for no rate"
        )
    return pd.to_numeric(grids[column], errors="coerce").to_numpy(dtype=float)


def _selection(incidents, start, end, category, source, time_col) -> np.ndarray:
    """Boolean mask of the incidents in the window, categories and sources asked for."""
    if not isinstance(incidents, pd.DataFrame):
        raise ValidationError(f"incidents must be a DataFrame, got {type(incidents).__name__}")
    mask = np.ones(len(incidents), dtype=bool)
    if start is not None or end is not None:
        if time_col not in incidents:
            raise ValidationError(f"incidents has no column time_col={time_col!r} for start/end")
        times = pd.to_datetime(incidents[time_col])
        low, high = _bound(start, times, "start"), _bound(end, times, "end")
        if low is not None and high is not None and high <= low:
            raise ValidationError(f"end ({end!r}) must be after start ({start!r})")
        if low is not None:
            mask &= (times >= low).to_numpy()
        if high is not None:
            mask &= (times < high).to_numpy()
    if category is not None:
        mask &= _matches(incidents, "category", category, prefix=True)
    if source is not None:
        mask &= _matches(incidents, "source", source, prefix=False)
    return mask


def _bound(value, times: pd.Series, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"{name} must be a date or time, got {value!r}") from error
    zone = times.dt.tz
    if zone is not None and stamp.tzinfo is None:
        return stamp.tz_localize(zone)
    if zone is None and stamp.tzinfo is not None:
        raise ValidationError(f"{name} has a time zone but the incident times do not")
    return stamp


def _matches(incidents, column: str, wanted, prefix: bool) -> np.ndarray:
    if column not in incidents:
        raise ValidationError(f"incidents has no column {column!r} to filter by {column}")
    values = [wanted] if isinstance(wanted, str) else list(wanted)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValidationError(f"{column} must be a non-empty string or list of strings")
    text = incidents[column].astype("string")
    if prefix:
        return text.str.startswith(tuple(values)).fillna(False).to_numpy(dtype=bool)
    return text.isin(values).fillna(False).to_numpy(dtype=bool)


def _incident_grid_codes(incidents, mask, grids, code) -> np.ndarray:
    """Grid code (or None) of each selected incident."""
    if "grid_code" in incidents:
        codes = incidents["grid_code"].to_numpy(dtype=object)[mask]
        return np.array([None if pd.isna(c) else str(c) for c in codes], dtype=object)
    lon, lat = incident_lonlat(incidents[mask])
    wgs84 = grids if grids.crs.equals(pyproj.CRS.from_epsg(4326)) else grids.to_crs(4326)
    index = GridIndex(wgs84[[code, wgs84.geometry.name]], code=code)
    return index.assign_xy(lon, lat)["code"].to_numpy(dtype=object)


def _to_metric(geoms: np.ndarray, crs: Any, metric_crs: Any) -> tuple[np.ndarray, pyproj.CRS]:
    series = gpd.GeoSeries(geoms, crs=crs)
    target = resolve_metric_crs(series, metric_crs)
    if not series.crs.equals(target):
        series = series.to_crs(target)
    return np.asarray(series.array, dtype=object), target


# -- spatial weights -----------------------------------------------------------------
def contiguity_weights(
    grids: gpd.GeoDataFrame,
    kind: str = "queen",
    tolerance_m: float | None = None,
    islands: str = "nearest",
    *,
    code: str = "code",
    metric_crs: Any = None,
) -> tuple[libpysal.weights.W, list[str]]:
    """Binary contiguity weights between grids, tolerant of hairline gaps.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grids with unique codes and a CRS.
    kind : {"queen", "rook"}
        ``queen``: grids whose boundaries come within ``tolerance_m`` of each
        other (sharing a vertex is enough) — ``libpysal``'s fuzzy contiguity,
        found with a GEOS distance query instead of buffering every grid.
        ``rook``: grids sharing an edge exactly (``libpysal`` Rook).
    tolerance_m : float, optional
        Gap (m) still counted as contact; default 1.0 for queen. Rook takes
        only 0 (its default).
    islands : {"nearest", "keep"}
        A grid with no neighbour is linked to its nearest grid (``nearest``,
        the default: Gi* of a lone grid would only restate its own value), or
        left alone (``keep``).
    code : str, default "code"
        Column with the grid codes, used as the weights' ids.
    metric_crs : anything pyproj.CRS accepts, optional
        Projected CRS in metres for the tolerance; default: the UTM zone.

    Returns
    -------
    w : libpysal.weights.W
        Binary weights, ids = codes in the grids' order.
    linked : list of str
        Codes of the islands that were linked to their nearest grid.

    Raises
    ------
    ValidationError
        For an unknown ``kind`` or ``islands``, or a negative tolerance.
    """
    if kind not in _WEIGHTS:
        raise ValidationError(f"kind must be one of {list(_WEIGHTS)}, got {kind!r}")
    if islands not in _ISLANDS:
        raise ValidationError(f"islands must be one of {list(_ISLANDS)}, got {islands!r}")
    tolerance = _tolerance(kind, tolerance_m)
    codes, geoms = _checked_grids(grids, code)
    metric, _ = _to_metric(geoms, grids.crs, metric_crs)
    tree = shapely.STRtree(metric)
    if kind == "queen":
        predicate = "dwithin" if tolerance > 0 else "intersects"
        left, right = tree.query(metric, predicate=predicate, distance=tolerance or None)
    else:
        left, right = _rook_pairs(metric)
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(codes))}
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i != j:
            neighbours[i].add(j)
            neighbours[j].add(i)
    linked = _link_islands(neighbours, tree, metric) if islands == "nearest" else []
    import libpysal

    w = libpysal.weights.W(
        {codes[i]: [codes[j] for j in sorted(n)] for i, n in neighbours.items()},
        id_order=list(codes),
        silence_warnings=True,
    )
    return w, [str(codes[i]) for i in linked]


def _tolerance(kind: str, tolerance_m: float | None) -> float:
    if tolerance_m is None:
        return _DEFAULT_TOLERANCE_M if kind == "queen" else 0.0
    ok = isinstance(tolerance_m, int | float | np.number) and not isinstance(tolerance_m, bool)
    if not (ok and np.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ValidationError(f"tolerance_m must be a finite number >= 0, got {tolerance_m!r}")
    if kind == "rook" and tolerance_m > 0:
        raise ValidationError("weights='rook' needs shared edges: tolerance_m must be 0 or None")
    return float(tolerance_m)


def _rook_pairs(metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import libpysal

    frame = gpd.GeoDataFrame(geometry=list(metric))
    w = libpysal.weights.Rook.from_dataframe(frame, use_index=False, silence_warnings=True)
    pairs = [(i, j) for i, ns in w.neighbors.items() for j in ns]
    if not pairs:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    left, right = np.array(pairs, dtype=np.int64).T
    return left, right


def _link_islands(neighbours: dict[int, set[int]], tree, metric: np.ndarray) -> list[int]:
    alone = [i for i, n in neighbours.items() if not n]
    if not alone or len(metric) < 2:
        return []
    (which, nearest) = tree.query_nearest(metric[alone], exclusive=True, all_matches=False)
    for k, j in zip(which.tolist(), nearest.tolist(), strict=True):
        neighbours[alone[k]].add(j)
        neighbours[j].add(alone[k])
    return alone


# -- Gi* -----------------------------------------------------------------------------
class HotSpots:
    """Getis-Ord Gi* hot and cold spots of a value per grid, binned as in ArcGIS.

    Parameters
    ----------
    permutations : int, default 999
        Conditional permutations for the pseudo p-values; 0 for the normal
        approximation (ArcGIS's p-values).
    seed : int or None, default 0
        Seed of the permutations: the same seed gives the same ``p_``.
    fdr : bool, default False
        Control the false discovery rate at each confidence level (see the
        module notes). Pseudo p-values cannot go below 2 / (permutations +
        1), so over hundreds of grids FDR with permutations rarely lets
        anything through: use ``permutations=0`` with it (as ArcGIS does), or
        tens of thousands of permutations.
    alpha : {0.10, 0.05, 0.01}
        The widest confidence level reported.
    weights : {"queen", "rook"} or libpysal.weights.W
        Contiguity (see :func:`contiguity_weights`), or ready weights whose
        ``id_order`` is the grids' codes.
    tolerance_m : float, optional
        Contact tolerance of the contiguity, in metres (queen default 1.0).
    islands : {"nearest", "keep"}
        What to do with a grid without neighbours.
    metric_crs : anything pyproj.CRS accepts, optional
        Projected CRS in metres for the tolerance; default: the UTM zone.

    Attributes
    ----------
    z_ : numpy.ndarray
        Gi* z-scores (analytical, binary weights), in the grids' order.
    p_ : numpy.ndarray
        Two-sided p-values (pseudo p-values with permutations).
    bin_ : numpy.ndarray of int
        Confidence bins -3 … 3.
    thresholds_ : dict
        Bin -> the p-value cut-off used (the FDR cut-off when ``fdr``).
    weights_ : libpysal.weights.W
        The weights used (without the self-weight).
    islands_ : list of str
        Grids that had no neighbour and were linked to their nearest grid.
    result_ : geopandas.GeoDataFrame
        ``code``, the value column, ``z``, ``p``, ``bin`` and the geometry, with
        the grids' index and CRS.

    Examples
    --------
    >>> counts = grid_counts(demo.incidents, demo.grids, category="0201")  # doctest: +SKIP
    >>> HotSpots(seed=1).fit(counts).result_.query("bin == 3")              # doctest: +SKIP
    """

    def __init__(
        self,
        permutations: int = 999,
        seed: int | None = 0,
        fdr: bool = False,
        alpha: float = 0.10,
        weights: str | libpysal.weights.W = "queen",
        tolerance_m: float | None = None,
        islands: str = "nearest",
        metric_crs: Any = None,
    ):
        self.permutations = permutations
        self.seed = seed
        self.fdr = fdr
        self.alpha = alpha
        self.weights = weights
        self.tolerance_m = tolerance_m
        self.islands = islands
        self.metric_crs = metric_crs

    def fit(self, grids: gpd.GeoDataFrame, column: str = "count", code: str = "code") -> HotSpots:
        """Compute Gi*, p-values and bins of ``grids[column]``.

        Parameters
        ----------
        grids : geopandas.GeoDataFrame
            Grids with codes and a non-negative value per grid (e.g. the
            output of :func:`grid_counts`).
        column : str, default "count"
            The value to analyse.
        code : str, default "code"
            Column with the grid codes.

        Returns
        -------
        HotSpots
            self, with the result attributes set.

        Raises
        ------
        ValidationError
            For bad parameters, a missing column, missing or negative values,
            fewer than 3 grids, or weights that do not match the grids.
        """
        _check_inference(self.permutations, self.seed, self.fdr, self.alpha)
        codes, _ = _checked_grids(grids, code)
        y = _values(grids, column)
        w, self.islands_ = _weights(self, grids, code, codes)
        self.z_, self.p_ = gi_star(y, w, self.permutations, self.seed)
        self.bin_, self.thresholds_ = confidence_bins(self.z_, self.p_, self.alpha, self.fdr)
        self.weights_ = w
        result = {
            "code": codes,
            column: grids[column].to_numpy(),
            "z": self.z_,
            "p": self.p_,
            "bin": self.bin_,
        }
        self.result_ = gpd.GeoDataFrame(
            result, geometry=np.asarray(grids.geometry.array), crs=grids.crs, index=grids.index
        )
        return self


def _check_inference(permutations, seed, fdr, alpha) -> None:
    if (
        isinstance(permutations, bool)
        or not isinstance(permutations, int | np.integer)
        or (permutations < 0)
    ):
        raise ValidationError(f"permutations must be an integer >= 0, got {permutations!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
    ):
        raise ValidationError(f"seed must be None or an integer >= 0, got {seed!r}")
    if not isinstance(fdr, bool | np.bool_):
        raise ValidationError(f"fdr must be True or False, got {fdr!r}")
    if alpha not in CONFIDENCE_LEVELS.values():
        raise ValidationError(
            f"alpha must be one of {sorted(CONFIDENCE_LEVELS.values(), reverse=True)}, "
            f"got {alpha!r}"
        )


def _values(grids: gpd.GeoDataFrame, column: str) -> np.ndarray:
    if column not in grids:
        raise ValidationError(f"grids has no column column={column!r}")
    y = pd.to_numeric(grids[column], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(y).all() or (y < 0).any():
        raise ValidationError(f"{column!r} must be finite numbers >= 0 (counts or rates)")
    if len(y) < 3:
        raise ValidationError(f"Gi* needs at least 3 grids, got {len(y)}")
    return y


def _weights(model, grids, code, codes) -> tuple[libpysal.weights.W, list[str]]:
    import libpysal

    if isinstance(model.weights, libpysal.weights.W):
        if [str(i) for i in model.weights.id_order] != list(codes):
            raise ValidationError("weights.id_order must be the grid codes in the grids' order")
        return model.weights, []
    if model.weights not in _WEIGHTS:
        raise ValidationError(
            f"weights must be one of {list(_WEIGHTS)} or a libpysal W, got {model.weights!r}"
        )
    return contiguity_weights(
        grids,
        model.weights,
        model.tolerance_m,
        model.islands,
        code=code,
        metric_crs=model.metric_crs,
    )


def gi_star(
    y: np.ndarray, w: libpysal.weights.W, permutations: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z-scores and two-sided p-values of ``y`` on binary weights ``w``.

    A constant ``y`` has no clusters: z = 0 and p = 1 everywhere (Gi* is 0/0);
    so has a grid whose neighbourhood is the whole study area.
    """
    if np.ptp(y) == 0:
        return np.zeros(len(y)), np.ones(len(y))
    import esda
    import libpysal

    # esda sets the transform of the W it is given: hand it a binary copy, so
    # the caller's weights never change and are always read as binary.
    binary = libpysal.weights.W(w.neighbors, id_order=w.id_order, silence_warnings=True)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # esda announces a future default for `alternative`; p_ is computed
        # from the simulations below, so that change cannot alter it.
        warnings.filterwarnings("ignore", message="The alternative hypothesis", category=Warning)
        g = esda.G_Local(
            y,
            binary,
            transform="B",
            permutations=int(permutations),
            star=True,
            keep_simulations=True,
            n_jobs=1,
            seed=None if seed is None else int(seed),
        )
    # A grid whose neighbourhood is every grid has Gi* = 1 whatever the data:
    # zero variance, no information. It is neither hot nor cold.
    z = np.nan_to_num(np.asarray(g.Zs, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    if permutations == 0:
        return z, np.minimum(1.0, 2 * ndtr(-np.abs(z)))
    sims = np.asarray(g.rGs, dtype=float)
    observed = np.asarray(g.Gs, dtype=float)[:, None]
    extreme = np.minimum((sims >= observed).sum(1), (sims <= observed).sum(1))
    return z, np.minimum(1.0, 2 * (extreme + 1) / (permutations + 1))


def confidence_bins(
    z: np.ndarray, p: np.ndarray, alpha: float = 0.10, fdr: bool = False
) -> tuple[np.ndarray, dict[int, float]]:
    """ArcGIS confidence bins (-3 … 3) from z-scores and two-sided p-values.

    Returns the bins and, per bin level, the p-value cut-off used.
    """
    import esda

    bins = np.zeros(len(z), dtype=np.int8)
    usable = np.isfinite(z) & np.isfinite(p)
    thresholds: dict[int, float] = {}
    for level in (1, 2, 3):  # widest first: a stricter level overwrites
        cut = CONFIDENCE_LEVELS[level]
        if cut > alpha:
            continue
        if fdr:
            cut = float(esda.fdr(p[usable], cut)) if usable.any() else 0.0
        thresholds[level] = cut
        hit = usable & (p <= cut)
        bins[hit] = (level * np.sign(z[hit])).astype(np.int8)
    return bins, thresholds


# -- heat ----------------------------------------------------------------------------
@dataclass
class DensitySurface:
    """A kernel density raster, north up.

    Attributes
    ----------
    values : numpy.ndarray
        ``(ny, nx)`` density in incidents per km² (weights per km² when
        weighted); row 0 is the northernmost.
    x, y : numpy.ndarray
        Cell centres in :attr:`crs` (``y`` descending, like the rows).
    cell_m, bandwidth_m : float
    crs : pyproj.CRS
        The projected CRS the cells are square in.
    """

    values: np.ndarray
    x: np.ndarray
    y: np.ndarray
    cell_m: float
    bandwidth_m: float
    crs: pyproj.CRS

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the raster in :attr:`crs`."""
        h = self.cell_m / 2
        return (self.x[0] - h, self.y[-1] - h, self.x[-1] + h, self.y[0] + h)

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """Affine coefficients (a, b, c, d, e, f) in the order ``rasterio.Affine`` takes."""
        minx, _, _, maxy = self.bounds
        return (self.cell_m, 0.0, minx, 0.0, -self.cell_m, maxy)

    def lonlat_bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((south, west), (north, east)) in WGS84, as folium's ImageOverlay takes them.

        The raster is square in :attr:`crs`, so drawn on a Web Mercator map it
        is off by the grid convergence (well under a cell across a district).
        """
        minx, miny, maxx, maxy = self.bounds
        to_lonlat = pyproj.Transformer.from_crs(self.crs, 4326, always_xy=True)
        lon, lat = to_lonlat.transform([minx, maxx, minx, maxx], [miny, miny, maxy, maxy])
        return (min(lat), min(lon)), (max(lat), max(lon))

    def to_points(self, min_share: float = 0.05) -> pd.DataFrame:
        """Cell centres for ``folium.plugins.HeatMap``: columns ``lat``, ``lon``, ``weight``.

        Cells below ``min_share`` of the peak are left out; ``weight`` is the
        density divided by the peak (0–1].
        """
        if not (isinstance(min_share, int | float) and 0 <= min_share <= 1):
            raise ValidationError(f"min_share must be a number in [0, 1], got {min_share!r}")
        peak = float(self.values.max()) if self.values.size else 0.0
        if peak <= 0:
            return pd.DataFrame({"lat": [], "lon": [], "weight": []})
        row, col = np.nonzero(self.values >= max(min_share * peak, np.finfo(float).tiny))
        to_lonlat = pyproj.Transformer.from_crs(self.crs, 4326, always_xy=True)
        lon, lat = to_lonlat.transform(self.x[col], self.y[row])
        return pd.DataFrame({"lat": lat, "lon": lon, "weight": self.values[row, col] / peak})


def kernel_density(
    lon: Any,
    lat: Any,
    bandwidth_m: float = 150.0,
    cell_m: float = 50.0,
    bounds: tuple[float, float, float, float] | None = None,
    weights: Any = None,
    *,
    metric_crs: Any = None,
) -> DensitySurface:
    """Gaussian kernel density of points on a square raster.

    Points are binned on cells of ``cell_m`` in a metric CRS and the counts
    smoothed with a Gaussian filter of standard deviation ``bandwidth_m``
    (``scipy.ndimage.gaussian_filter``, truncated at 4 sigma): the same
    surface as summing a Gaussian per point, up to the binning, in
    milliseconds for 10^5 points.

    Parameters
    ----------
    lon, lat : array-like of float
        WGS84 degrees; NaN marks an unlocated point (skipped).
    bandwidth_m : float, default 150.0
        Kernel standard deviation in metres.
    cell_m : float, default 50.0
        Cell width in metres.
    bounds : (west, south, east, north), optional
        WGS84 extent of the raster; default: the points' extent plus four
        bandwidths (so the kernel mass stays on the raster).
    weights : array-like of float, optional
        A weight per point (e.g. severity); default 1.
    metric_crs : anything pyproj.CRS accepts, optional
        Projected CRS in metres; default: the UTM zone of the points.

    Returns
    -------
    DensitySurface

    Raises
    ------
    ValidationError
        For non-positive sizes, mismatched arrays, no located point without
        ``bounds``, or a raster over 4 million cells (raise ``cell_m``).
    """
    bandwidth = _positive(bandwidth_m, "bandwidth_m")
    cell = _positive(cell_m, "cell_m")
    lon, lat, weights = _points(lon, lat, weights)
    crs = _density_crs(lon, lat, bounds, metric_crs)
    x, y = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    # four bandwidths of margin: the filter's truncation, so no kernel mass is lost
    minx, miny, maxx, maxy = _extent(x, y, bounds, crs, 4 * bandwidth)
    nx, ny = int(np.ceil((maxx - minx) / cell)), int(np.ceil((maxy - miny) / cell))
    if nx * ny > _MAX_CELLS:
        raise ValidationError(
            f"the raster would have {nx * ny:,} cells (limit {_MAX_CELLS:,}): raise cell_m"
        )
    xe, ye = minx + cell * np.arange(nx + 1), miny + cell * np.arange(ny + 1)
    counts, _, _ = np.histogram2d(y, x, bins=[ye, xe], weights=weights)
    smooth = ndimage.gaussian_filter(counts, sigma=bandwidth / cell, mode="constant", truncate=4)
    density = smooth * (1e6 / cell**2)  # per cell -> per km²
    centres_x, centres_y = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
    return DensitySurface(density[::-1], centres_x, centres_y[::-1], cell, bandwidth, crs)


def _positive(value: Any, name: str) -> float:
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not (ok and np.isfinite(value) and value > 0):
        raise ValidationError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _points(lon, lat, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    lon = np.asarray(lon, dtype=float).ravel()
    lat = np.asarray(lat, dtype=float).ravel()
    if lon.shape != lat.shape:
        raise ValidationError(f"lon and lat must have the same length, got {lon.size}, {lat.size}")
    keep = np.isfinite(lon) & np.isfinite(lat)
    if weights is not None:
        weights = np.asarray(weights, dtype=float).ravel()
        if weights.shape != lon.shape or not np.isfinite(weights[keep]).all():
            raise ValidationError("weights must be finite numbers, one per point")
        weights = weights[keep]
    return lon[keep], lat[keep], weights


def _density_crs(lon, lat, bounds, metric_crs) -> pyproj.CRS:
    if metric_crs is not None:
        return resolve_metric_crs(gpd.GeoSeries([], crs=4326), metric_crs)
    if bounds is not None:
        west, south, east, north = _checked_bounds(bounds)
        lon0, lat0 = (west + east) / 2, (south + north) / 2
    elif len(lon):
        lon0, lat0 = float(np.mean([lon.min(), lon.max()])), float(np.mean([lat.min(), lat.max()]))
    else:
        raise ValidationError("no located point: give bounds for an empty surface")
    return utm_crs(lon0, lat0)


def _checked_bounds(bounds) -> tuple[float, float, float, float]:
    message = f"bounds must be (west, south, east, north) in degrees, got {bounds!r}"
    try:
        west, south, east, north = (float(v) for v in bounds)
    except (TypeError, ValueError) as error:
        raise ValidationError(message) from error
    if not (west < east and south < north):
        raise ValidationError(message)
    return west, south, east, north


def _extent(x, y, bounds, crs, pad) -> tuple[float, float, float, float]:
    if bounds is None:
        return x.min() - pad, y.min() - pad, x.max() + pad, y.max() + pad
    west, south, east, north = _checked_bounds(bounds)
    to_metric = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    bx, by = to_metric.transform([west, east, west, east], [south, south, north, north])
    return min(bx), min(by), max(bx), max(by)


# -- trends --------------------------------------------------------------------------
def mann_kendall(series: Any) -> pd.DataFrame:
    """Mann–Kendall trend test of each row of ``series`` (time along the columns).

    S = Σ_{i<j} sign(x_j − x_i); its variance has the tie correction
    (n(n−1)(2n+5) − Σ t(t−1)(2t+5)) / 18; z = (S − sign S) / sqrt(var)
    (continuity correction); p = 2 (1 − Φ(|z|)); tau = S / (n(n−1)/2).

    Parameters
    ----------
    series : array-like, shape (n_series, n_steps) or (n_steps,)
        Finite values, at least 3 steps.

    Returns
    -------
    pandas.DataFrame
        One row per series: ``s``, ``var_s``, ``z``, ``p``, ``tau``.
    """
    x = np.atleast_2d(np.asarray(series, dtype=float))
    n = x.shape[1]
    if n < 3 or not np.isfinite(x).all():
        raise ValidationError(f"series must be finite with at least 3 steps, got {n} step(s)")
    i, j = np.triu_indices(n, 1)
    s = np.sign(x[:, j] - x[:, i]).sum(axis=1)
    var = (n * (n - 1) * (2 * n + 5) - _tie_term(x)) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
    return pd.DataFrame(
        {"s": s, "var_s": var, "z": z, "p": 2 * ndtr(-np.abs(z)), "tau": s / len(i)}
    )


def _tie_term(x: np.ndarray) -> np.ndarray:
    """Σ t(t−1)(2t+5) over the groups of tied values of each row, vectorised."""
    ordered = np.sort(x, axis=1)
    starts = np.ones_like(ordered, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    t = np.bincount(np.cumsum(starts.ravel()) - 1).astype(float)  # run lengths, row by row
    row = np.repeat(np.arange(len(x)), starts.sum(axis=1))
    return np.bincount(row, weights=t * (t - 1) * (2 * t + 5), minlength=len(x))


def classify_emerging(
    bins: Any, trend_z: Any, trend_p: Any, trend_alpha: float = 0.05
) -> np.ndarray:
    """ArcGIS Emerging Hot Spot patterns from Gi* bins over time and the Gi* trend.

    A step is *hot* when its bin is > 0 and *cold* when < 0; n is the number
    of steps, "90 %" means at least 0.9·n steps. In order, the first that
    applies:

    - ``historical``: the last step is not hot, but >= 90 % of steps are;
    - ``none``: the last step is not hot;
    - ``intensifying`` / ``diminishing``: >= 90 % hot, and the Mann–Kendall
      trend of the Gi* z-scores is significant (p <= ``trend_alpha``) and up /
      down;
    - ``persistent``: >= 90 % hot, no significant trend;
    - ``new``: only the last step is hot;
    - ``consecutive``: an unbroken run of >= 2 hot steps ends the series and
      no step before the run is hot;
    - ``oscillating``: some earlier step was cold;
    - ``sporadic``: otherwise (hot on and off, never cold).

    Cold-spot patterns are not classed (they fall under ``none``): a grid
    with unusually few incidents needs no action.

    Returns
    -------
    numpy.ndarray of str, one class per row of ``bins``.
    """
    bins = np.atleast_2d(np.asarray(bins))
    trend_z, trend_p = np.asarray(trend_z, dtype=float), np.asarray(trend_p, dtype=float)
    hot, cold = bins > 0, bins < 0
    n = bins.shape[1]
    share = hot.sum(axis=1) >= _SHARE_HOT * n - 1e-9
    last = hot[:, -1]
    # length of the run of hot steps that ends the series
    run = np.argmin(np.concatenate([hot[:, ::-1], np.zeros((len(bins), 1), bool)], axis=1), axis=1)
    before_run = np.array([hot[k, : n - r].any() for k, r in enumerate(run)], dtype=bool)
    trend = trend_p <= trend_alpha
    conditions = [
        ~last & share,
        ~last,
        share & trend & (trend_z > 0),
        share & trend & (trend_z < 0),
        share,
        hot.sum(axis=1) == 1,
        (run >= 2) & ~before_run,
        cold.any(axis=1),
    ]
    names = [
        "historical",
        "none",
        "intensifying",
        "diminishing",
        "persistent",
        "new",
        "consecutive",
        "oscillating",
    ]
    return np.select(conditions, names, default="sporadic").astype(object)


class EmergingHotSpots:
    """Per-grid hot spot trends over time, modelled on ArcGIS Emerging Hot Spot Analysis.

    Incidents are counted per grid and time step (``freq``, default monthly);
    Gi* runs on every step's counts with the same weights (spatial
    neighbours only: unlike ArcGIS's space-time cube, earlier steps are not
    neighbours); the Mann–Kendall test runs on each grid's series of Gi*
    z-scores; :func:`classify_emerging` names the pattern.

    Parameters
    ----------
    freq : str, default "MS"
        A pandas frequency for the steps ("MS" months, "W-MON" weeks, "QS"
        quarters); steps start on its boundaries.
    permutations : int, default 0
        Permutations per step; 0 uses the normal approximation, as ArcGIS
        does, which keeps FDR meaningful (pseudo p-values bottom out at
        2 / (permutations + 1)).
    seed : int or None, default 0
    fdr : bool, default True
        ArcGIS applies FDR to every step.
    alpha : {0.10, 0.05, 0.01}
        A step is hot for a grid when its bin is positive at this level.
    trend_alpha : float, default 0.05
        Significance of the Mann–Kendall trend.
    weights, tolerance_m, islands, metric_crs
        As for :class:`HotSpots`; the weights are built once for all steps.

    Attributes
    ----------
    periods_ : pandas.DatetimeIndex
        Start of every step.
    counts_, z_, bins_ : pandas.DataFrame
        Grid codes × steps.
    trend_ : pandas.DataFrame
        Mann–Kendall of the z-scores per grid (see :func:`mann_kendall`),
        indexed by code.
    class_ : numpy.ndarray of str
        The pattern of every grid, in the grids' order.
    result_ : geopandas.GeoDataFrame
        ``code``, ``class``, ``count`` (all steps), ``hot_steps``,
        ``cold_steps``, ``trend_tau``, ``trend_p`` and the geometry.
    """

    def __init__(
        self,
        freq: str = "MS",
        permutations: int = 0,
        seed: int | None = 0,
        fdr: bool = True,
        alpha: float = 0.10,
        trend_alpha: float = 0.05,
        weights: str = "queen",
        tolerance_m: float | None = None,
        islands: str = "nearest",
        metric_crs: Any = None,
    ):
        self.freq = freq
        self.permutations = permutations
        self.seed = seed
        self.fdr = fdr
        self.alpha = alpha
        self.trend_alpha = trend_alpha
        self.weights = weights
        self.tolerance_m = tolerance_m
        self.islands = islands
        self.metric_crs = metric_crs

    def fit(
        self,
        incidents: pd.DataFrame,
        grids: gpd.GeoDataFrame,
        start: Any = None,
        end: Any = None,
        category: str | list[str] | None = None,
        source: str | list[str] | None = None,
        *,
        code: str = "code",
        time_col: str = "reported_at",
    ) -> EmergingHotSpots:
        """Count, test and class every grid.

        Parameters
        ----------
        incidents : pandas.DataFrame
            With ``time_col`` and either ``grid_code`` or coordinates (as for
            :func:`grid_counts`).
        grids : geopandas.GeoDataFrame
            Grids with unique codes and a CRS.
        start, end : optional
            Half-open window; default: from the step holding the first
            selected incident to the end of the step holding the last.
        category, source : optional
            As for :func:`grid_counts`.
        code, time_col : str

        Returns
        -------
        EmergingHotSpots
            self, with the result attributes set.

        Raises
        ------
        ValidationError
            For bad parameters, no incident selected, or fewer than 3 steps.
        """
        _check_inference(self.permutations, self.seed, self.fdr, self.alpha)
        if not (isinstance(self.trend_alpha, float | int) and 0 < self.trend_alpha < 1):
            raise ValidationError(f"trend_alpha must be in (0, 1), got {self.trend_alpha!r}")
        codes, _ = _checked_grids(grids, code)
        counts = self._counts(incidents, grids, codes, start, end, category, source, code, time_col)
        w, self.islands_ = _weights(self, grids, code, codes)
        seeds = _step_seeds(self.seed, counts.shape[1])
        z = np.empty(counts.shape)
        bins = np.empty(counts.shape, dtype=np.int8)
        for k in range(counts.shape[1]):
            z[:, k], p = gi_star(counts.iloc[:, k].to_numpy(float), w, self.permutations, seeds[k])
            bins[:, k], _ = confidence_bins(z[:, k], p, self.alpha, self.fdr)
        self.periods_ = pd.DatetimeIndex(counts.columns)
        self.counts_ = counts
        self.z_ = pd.DataFrame(z, index=counts.index, columns=counts.columns)
        self.bins_ = pd.DataFrame(bins, index=counts.index, columns=counts.columns)
        self.trend_ = mann_kendall(z).set_index(counts.index)
        self.class_ = classify_emerging(bins, self.trend_["z"], self.trend_["p"], self.trend_alpha)
        self.weights_ = w
        self.result_ = self._result(grids, codes)
        return self

    def _counts(self, incidents, grids, codes, start, end, category, source, code, time_col):
        if not isinstance(incidents, pd.DataFrame) or time_col not in incidents:
            raise ValidationError(f"incidents must be a DataFrame with column {time_col!r}")
        mask = _selection(incidents, start, end, category, source, time_col)
        if not mask.any():
            raise ValidationError("no incident matches the window, category and source asked for")
        times = pd.to_datetime(incidents[time_col])[mask]
        edges = self._edges(times, start, end)
        step = edges.searchsorted(pd.DatetimeIndex(times).as_unit("ns"), side="right") - 1
        taken = _incident_grid_codes(incidents, mask, grids, code)
        rows = pd.Index(codes).get_indexer(pd.Index(taken, dtype=object))
        ok = (rows >= 0) & (step >= 0) & (step < len(edges) - 1)
        table = np.zeros((len(codes), len(edges) - 1), dtype=np.int64)
        np.add.at(table, (rows[ok], step[ok]), 1)
        return pd.DataFrame(table, index=pd.Index(codes, name="code"), columns=edges[:-1])

    def _edges(self, times: pd.Series, start, end) -> pd.DatetimeIndex:
        try:
            offset = pd.tseries.frequencies.to_offset(self.freq)
        except ValueError as error:
            raise ValidationError(
                f"freq must be a pandas frequency such as 'MS', got {self.freq!r}"
            ) from error
        first = _bound(start, times, "start") or times.min()
        first = offset.rollback(first.normalize())
        # default end: the boundary after the day of the last incident
        last = _bound(end, times, "end") or offset.rollforward(
            times.max().normalize() + pd.Timedelta(days=1)
        )
        edges = pd.date_range(first, last, freq=offset)
        if edges[-1] < last:
            edges = edges.append(pd.DatetimeIndex([last]))
        edges = edges.as_unit("ns")
        if len(edges) < 4:
            raise ValidationError(
                f"emerging hot spots need at least 3 time steps, got {len(edges) - 1} "
                f"at freq={self.freq!r}"
            )
        return edges

    def _result(self, grids, codes) -> gpd.GeoDataFrame:
        bins = self.bins_.to_numpy()
        frame = {
            "code": codes,
            "class": self.class_,
            "count": self.counts_.sum(axis=1).to_numpy(),
            "hot_steps": (bins > 0).sum(axis=1),
            "cold_steps": (bins < 0).sum(axis=1),
            "trend_tau": self.trend_["tau"].to_numpy(),
            "trend_p": self.trend_["p"].to_numpy(),
        }
        return gpd.GeoDataFrame(
            frame, geometry=np.asarray(grids.geometry.array), crs=grids.crs, index=grids.index
        )


def _step_seeds(seed: int | None, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    return [int(s) for s in np.random.default_rng(seed).integers(0, 2**31 - 1, size=n)]
