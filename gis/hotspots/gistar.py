"""Getis-Ord Gi* hot and cold spots per grid, with ArcGIS-style confidence bins and FDR.

The conventions (binary weights, two-sided p-values, bins, FDR) are in :mod:`gis.hotspots`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.special import ndtr  # the normal CDF, without importing all of scipy.stats

from gis.errors import ValidationError
from gis.hotspots.counts import checked_grids
from gis.hotspots.weights import WEIGHT_KINDS, contiguity_weights

if TYPE_CHECKING:
    import libpysal

# esda and libpysal take seconds to import (they pull in scikit-learn and
# more), so they are imported on first use: `import gis` and the API stay fast.

__all__ = ["CONFIDENCE_LEVELS", "HotSpots", "confidence_bins", "gi_star"]

#: Confidence bin -> the largest two-sided p-value it takes (90, 95, 99 %).
CONFIDENCE_LEVELS: dict[int, float] = {3: 0.01, 2: 0.05, 1: 0.10}


@dataclass(eq=False)  # an estimator: its settings are the fields, results come from fit
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

    permutations: int = 999
    seed: int | None = 0
    fdr: bool = False
    alpha: float = 0.10
    weights: str | libpysal.weights.W = "queen"
    tolerance_m: float | None = None
    islands: str = "nearest"
    metric_crs: Any = None

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
        check_inference(self.permutations, self.seed, self.fdr, self.alpha)
        codes, _ = checked_grids(grids, code)
        y = _values(grids, column)
        w, self.islands_ = model_weights(self, grids, code, codes)
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


def check_inference(permutations, seed, fdr, alpha) -> None:
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


def model_weights(model, grids, code, codes) -> tuple[libpysal.weights.W, list[str]]:
    import libpysal

    if isinstance(model.weights, libpysal.weights.W):
        if [str(i) for i in model.weights.id_order] != list(codes):
            raise ValidationError("weights.id_order must be the grid codes in the grids' order")
        return model.weights, []
    if model.weights not in WEIGHT_KINDS:
        raise ValidationError(
            f"weights must be one of {list(WEIGHT_KINDS)} or a libpysal W, got {model.weights!r}"
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
        # esda copies the weights (a diagonal for Gi*) and libpysal then warns that a city
        # of several districts has several components: expected, and already handled.
        warnings.filterwarnings("ignore", message="The weights matrix is not fully connected")
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
