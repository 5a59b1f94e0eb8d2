"""Emerging hot spots: Gi* per time step, the Mann–Kendall trend per grid, ArcGIS's patterns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.special import ndtr  # the normal CDF, without importing all of scipy.stats

from gis.errors import ValidationError
from gis.hotspots.counts import checked_grids, incident_grid_codes, selection, time_bound
from gis.hotspots.gistar import check_inference, confidence_bins, gi_star, model_weights

__all__ = ["EMERGING_CLASSES", "EmergingHotSpots", "classify_emerging", "mann_kendall"]

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
_SHARE_HOT = 0.9  # ArcGIS: "at least ninety percent of the time-step intervals"


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


@dataclass(eq=False)  # an estimator: its settings are the fields, results come from fit
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

    freq: str = "MS"
    permutations: int = 0
    seed: int | None = 0
    fdr: bool = True
    alpha: float = 0.10
    trend_alpha: float = 0.05
    weights: str = "queen"
    tolerance_m: float | None = None
    islands: str = "nearest"
    metric_crs: Any = None

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
        check_inference(self.permutations, self.seed, self.fdr, self.alpha)
        if not (isinstance(self.trend_alpha, float | int) and 0 < self.trend_alpha < 1):
            raise ValidationError(f"trend_alpha must be in (0, 1), got {self.trend_alpha!r}")
        codes, _ = checked_grids(grids, code)
        counts = self._counts(incidents, grids, codes, start, end, category, source, code, time_col)
        w, self.islands_ = model_weights(self, grids, code, codes)
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
        mask = selection(incidents, start, end, category, source, time_col)
        if not mask.any():
            raise ValidationError("no incident matches the window, category and source asked for")
        times = pd.to_datetime(incidents[time_col])[mask]
        edges = self._edges(times, start, end)
        step = edges.searchsorted(pd.DatetimeIndex(times).as_unit("ns"), side="right") - 1
        taken = incident_grid_codes(incidents, mask, grids, code)
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
        first = time_bound(start, times, "start") or times.min()
        first = offset.rollback(first.normalize())
        # default end: the boundary after the day of the last incident
        last = time_bound(end, times, "end") or offset.rollforward(
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
