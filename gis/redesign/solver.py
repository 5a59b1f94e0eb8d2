"""Redesign grids to a target count with equal workload: merge or reshape.

Weidu district re-divided its 620 grids into 539 "按照任务相当、方便管理、界定清晰的
原则" (equal workload, easy management, clear boundaries). Off-the-shelf
regionalization (spopt AZP, Ward, Skater) optimises attribute homogeneity, not
balance, and spreads the workload *wider* than the input. :class:`Redesign`
balances a weighted workload directly, under hard constraints:

- every new grid is contiguous (rook adjacency: a shared edge of more than
  ``min_shared_m`` metres, measured in a metric CRS);
- every new grid nests within one community (or street, or any column);
- locked grids (e.g. the dedicated grids of an enterprise or school) are kept
  exactly as they are;
- optionally, every balanced grid's workload lies within ``band`` of the mean.

Two modes:

``merge``
    Each new grid is a union of whole current grids. Start: merge the pair of
    adjacent grids with the smallest workload product (each merge adds
    ``2 W_p W_q`` to the sum of squares, so that is the cheapest) until the
    target is reached. Then local search, until nothing improves: single
    grids move between adjacent new grids (never cutting the one they leave),
    also as two-step chains through a neighbour; adjacent pairs and trios of
    new grids are re-split optimally (exhaustively: they hold a few grids);
    and one pair is merged while another new grid is split, which moves
    capacity between communities.
``reshape``
    Micro-grids (the atoms) move between grids, so heavy grids can be split
    and light ones absorbed. Start from the current grids; give each
    community its share of the target in proportion to workload (optimal
    allocation of ``sum W**2 / k``); merge or split inside each community to
    reach it; then move boundary micro-grids (singly, in two-step chains, and
    by re-splitting adjacent pairs along random spanning trees) to balance,
    paying ``stability`` for every household that leaves its grid, so most
    households keep theirs.

Both modes also pay ``compactness`` per metre of boundary between new grids,
so balancing does not make ragged shapes. Everything random (visiting order,
spanning trees) is drawn from ``seed``: same seed, same plan.

Workload is ``sum_k weight_k * x_k / mean_k``, where ``mean_k`` is the mean of
column ``x_k`` over the current grids: with weights summing to 1, an average
current grid has workload 1. ``"area"`` is computed (m², metric CRS).

Example
-------
>>> model = Redesign(target=539, mode="merge", seed=1).fit(grids)   # doctest: +SKIP
>>> model.metrics_["cv"], model.new_grids_, model.lineage_          # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import csgraph

from gis import crs as crs_mod
from gis.codes import DEFAULT_SCHEME, CodeScheme
from gis.errors import ValidationError
from gis.redesign import build, checks
from gis.redesign.graph import Adjacency, build_adjacency
from gis.redesign.plan import (
    METRIC_KEYS,
    REPORT_BAND,
    Units,
    dissolve,
    lineage,
    new_grid_codes,
    new_grids_frame,
    plan_metrics,
)
from gis.redesign.search import improve
from gis.redesign.state import Objective, Partition, Problem

__all__ = [
    "DEFAULT_WEIGHTS",
    "METRIC_KEYS",
    "REPORT_BAND",
    "MODES",
    "STRATEGIES",
    "Redesign",
    "workload",
]

#: Default workload weights: households carry most of a grid worker's visits,
#: incidents the casework, population and area the rest.
DEFAULT_WEIGHTS: dict[str, float] = {
    "households": 0.4,
    "population": 0.2,
    "incidents": 0.3,
    "area": 0.1,
}
MODES = ("merge", "reshape")
#: ``search`` is the optimiser; ``greedy`` the plain baseline (merge mode only).
STRATEGIES = ("search", "greedy")
_NEST_LEVELS = ("community", "street")


class Redesign:
    """Redesign grids to ``target`` grids of equal workload.

    Parameters
    ----------
    target : int
        Number of new grids (locked grids included).
    mode : {"merge", "reshape"}
        ``merge``: new grids are unions of whole current grids.
        ``reshape``: micro-grids (``atoms`` in :meth:`fit`) move between grids.
    weights : mapping of str to float, optional
        Workload weight per column; ``"area"`` is computed from the geometry.
        Default :data:`DEFAULT_WEIGHTS` (which needs an ``incidents`` column:
        incidents per year).
    nest_within : {"community", "street"}, str or None
        Every new grid lies within one unit of this level: ``"community"`` is
        the grid's ``parent`` column, ``"street"`` its street code (prefix of
        the community code under ``scheme``), any other string a column of
        ``grids``; None for no nesting.
    band : float, optional
        Hard workload band: every balanced grid within ``mean * (1 ± band)``.
        Metrics report the share within ``band`` (±20 % when not given).
    locked : "dedicated", iterable of str or None
        Grids kept exactly as they are: ``"dedicated"`` for every grid whose
        ``kind`` is dedicated, or a collection of grid codes. Locked grids
        count towards ``target`` but not towards the balance metrics.
    seed : int, optional
        Seed of the search's random order and random spanning trees.
    strategy : {"search", "greedy"}
        ``greedy`` is the plain baseline (merge mode only): repeatedly merge
        the lightest grid into its lightest neighbour, same constraints.
    stability : float
        Reshape mode: cost of a household leaving its grid, relative to the
        balance term (per mean households of a grid). Higher keeps more
        households, lower balances harder.
    compactness : float
        Cost of region boundary length (per mean grid perimeter), a
        Polsby–Popper proxy that keeps shapes round while balancing.
    code, parent : str
        Code column of grids and atoms; parent column (a grid's community, an
        atom's grid).
    min_shared_m : float
        Shared boundary (m) above which two areas are neighbours.
    metric_crs : CRS-like, optional
        Projected CRS in metres for areas, lengths and Polsby–Popper; default
        the UTM zone of the grids.
    scheme : CodeScheme
        Code scheme for new grid codes and street prefixes.
    max_rounds : int
        Cap on the search's rounds (descent + recombination + merge-split).

    Attributes
    ----------
    labels_ : Series
        New grid code, indexed by old grid code (merge) or atom code (reshape).
    new_grids_ : GeoDataFrame
        The new grids (also ``plan_``): ``code, name, level, kind,
        parent_code, households, population, workload, continues, n_old,
        geometry`` in the input CRS; ``continues`` is the old grid each new
        grid is matched to (None for a new one).
    lineage_ : DataFrame
        ``old_code, new_code, area_share, household_share``; the shares of
        each old grid sum to 1.
    metrics_ : dict
        The keys of :data:`METRIC_KEYS`.
    mean_workload_ : float
        Target workload of a balanced grid.
    stats_ : dict
        Search diagnostics: operation counts and seconds per phase.
    """

    def __init__(
        self,
        target: int,
        mode: str = "merge",
        weights: Mapping[str, float] | None = None,
        nest_within: str | None = "community",
        band: float | None = None,
        locked: str | Iterable[str] | None = None,
        seed: int | None = None,
        *,
        strategy: str = "search",
        stability: float = 0.1,
        compactness: float = 0.05,
        code: str = "code",
        parent: str = "parent_code",
        min_shared_m: float = 1.0,
        metric_crs: Any = None,
        scheme: CodeScheme = DEFAULT_SCHEME,
        max_rounds: int = 30,
    ):
        self.target = checks.check_int(target, "target", 1)
        self.mode = checks.check_choice(mode, "mode", MODES)
        self.weights = checks.check_weights(DEFAULT_WEIGHTS if weights is None else weights)
        self.nest_within = checks.check_nest(nest_within)
        self.band = checks.check_band(band)
        self.locked = checks.check_locked(locked)
        self.seed = None if seed is None else checks.check_int(seed, "seed", 0)
        self.strategy = checks.check_choice(strategy, "strategy", STRATEGIES)
        if self.strategy == "greedy" and self.mode != "merge":
            raise ValidationError("strategy='greedy' is the merge-mode baseline; use mode='merge'")
        self.stability = checks.check_float(stability, "stability")
        self.compactness = checks.check_float(compactness, "compactness")
        self.code, self.parent = code, parent
        self.min_shared_m = checks.check_float(min_shared_m, "min_shared_m")
        self.metric_crs = metric_crs
        self.scheme = scheme
        self.max_rounds = checks.check_int(max_rounds, "max_rounds", 0)

    # -- public ------------------------------------------------------------------------
    def fit(self, grids: gpd.GeoDataFrame, atoms: gpd.GeoDataFrame | None = None) -> Redesign:
        """Compute the plan.

        Parameters
        ----------
        grids : GeoDataFrame
            Current grids: ``code``, ``parent`` (when nesting by community or
            street, or numbering new codes), ``kind`` (for
            ``locked="dedicated"``) and the weighted columns (in merge mode).
        atoms : GeoDataFrame, optional
            Reshape mode only: micro-grids with ``code``, ``parent`` (their
            grid's code) and the weighted columns, in the grids' CRS.

        Returns
        -------
        Redesign
            ``self``, with the attributes listed in the class docstring.

        Raises
        ------
        ValidationError
            Missing columns, duplicate codes, bad geometries, atoms in the
            wrong mode or pointing at unknown grids.
        CRSError
            Atoms and grids in different CRSs, or a non-metric ``metric_crs``.
        InfeasibleError
            A target outside the feasible range, or a band no plan can meet;
            the message states the feasible range.
        """
        clock = {"start": time.perf_counter()}
        units = self._units(grids, atoms)
        clock["prepare_s"] = time.perf_counter()
        labels, stats = self._solve(units)
        clock["search_s"] = time.perf_counter()
        self._finish(units, labels)
        clock["plan_s"] = time.perf_counter()
        self.stats_ = {**stats, **_durations(clock)}
        return self

    @property
    def plan_(self) -> gpd.GeoDataFrame:
        """Alias of ``new_grids_``."""
        return self.new_grids_

    def evaluate(
        self,
        grids: gpd.GeoDataFrame,
        labels: pd.Series | Mapping | np.ndarray,
        atoms: gpd.GeoDataFrame | None = None,
    ) -> dict[str, float]:
        """Metrics of any plan (e.g. a spopt labelling) under this redesign's settings.

        Parameters
        ----------
        grids, atoms
            As for :meth:`fit`.
        labels : Series, mapping or array
            Region of every old grid (merge) or atom (reshape): indexed by
            code, or an array aligned with the rows. Any hashable labels.

        Returns
        -------
        dict
            The keys of :data:`METRIC_KEYS`; ``target`` is not used.
        """
        units = self._units(grids, atoms)
        dense = checks.dense_labels(labels, units.codes, "labels")
        return plan_metrics(units, dense, self.band)

    # -- preparation ---------------------------------------------------------------------
    def _units(self, grids, atoms) -> Units:
        grids = checks.check_frame(grids, "grids", self.code)
        if self.mode == "merge" and atoms is not None:
            raise ValidationError(
                "atoms are only used in mode='reshape'; merge mode moves whole grids"
            )
        if self.mode == "reshape" and atoms is None:
            raise ValidationError("mode='reshape' needs atoms (the micro-grids that move)")
        metric_crs = crs_mod.metric_crs(grids, self.metric_crs)
        frame = grids if atoms is None else checks.check_atoms(atoms, grids, self.code, self.parent)
        grid_index = (
            np.arange(len(grids))
            if atoms is None
            else pd.Index(grids[self.code].astype(str)).get_indexer(frame[self.parent].astype(str))
        )
        metric = frame.geometry.to_crs(metric_crs).to_numpy()
        area = shapely.area(metric)
        load = checks.weighted_load(frame, self.weights, area, len(grids))
        community = (
            grids[self.parent].astype(str).to_numpy()[grid_index]
            if self.parent in grids.columns
            else None
        )
        return Units(
            codes=frame[self.code].astype(str).to_numpy(),
            grid=grid_index,
            grids=grids,
            code=self.code,
            geoms=frame.geometry.to_numpy(),
            metric=metric,
            area=area,
            households=checks.column_or_zero(frame, "households"),
            population=checks.column_or_zero(frame, "population"),
            load=load,
            nest=self._nest(grids, grid_index),
            community=community,
            locked=self._locked(grids)[grid_index],
            adjacency=build_adjacency(metric, self.min_shared_m),
            has_households="households" in frame.columns,
            has_population="population" in frame.columns,
            crs=grids.crs,
            metric_crs=metric_crs,
        )

    def _nest(self, grids: gpd.GeoDataFrame, grid_index: np.ndarray) -> np.ndarray | None:
        if self.nest_within is None:
            return None
        column = self.parent if self.nest_within in _NEST_LEVELS else self.nest_within
        if column not in grids.columns:
            raise ValidationError(
                f"nest_within={self.nest_within!r} needs column {column!r} in grids; "
                f"columns are {list(grids.columns)}"
            )
        values = grids[column]
        if values.isna().any():
            raise ValidationError(f"column {column!r} has missing values; every grid must nest")
        values = values.astype(str)
        if self.nest_within == "street":
            values = values.map(lambda c: self.scheme.ancestor(c, "street"))
        _, nest = np.unique(values.to_numpy(), return_inverse=True)
        return nest[grid_index]

    def _locked(self, grids: gpd.GeoDataFrame) -> np.ndarray:
        if self.locked is None:
            return np.zeros(len(grids), dtype=bool)
        if self.locked == "dedicated":
            if "kind" not in grids.columns:
                raise ValidationError("locked='dedicated' needs a 'kind' column in grids")
            return (grids["kind"] == "dedicated").to_numpy()
        codes = grids[self.code].astype(str)
        unknown = sorted(set(self.locked) - set(codes))
        if unknown:
            raise ValidationError(
                f"locked names {len(unknown)} code(s) not in grids: {unknown[:5]}"
            )
        return codes.isin(self.locked).to_numpy()

    # -- solving ---------------------------------------------------------------------------
    def _solve(self, units: Units) -> tuple[np.ndarray, dict]:
        zones, search_adj = _zones(units)
        n_locked = int(np.unique(units.grid[units.locked]).size)
        n_zones = int(zones.max()) + 1 if (zones >= 0).any() else 0
        checks.check_target(
            self.target,
            low=n_locked + n_zones,
            high=n_locked + int((~units.locked).sum()),
            n_zones=n_zones,
            n_locked=n_locked,
            mode=self.mode,
            nested=units.nest is not None,
        )
        k_free = self.target - n_locked
        free_load = float(units.load[~units.locked].sum())
        mu = free_load / k_free if k_free else 1.0
        if self.band is not None:
            noun = "grid" if self.mode == "merge" else "micro-grid"
            checks.check_band_feasible(self.band, units, zones, k_free, mu, noun)
        problem = self._problem(units, zones, search_adj, mu, k_free)
        part = _initial_partition(problem, units)
        rng = random.Random(self.seed)
        stats = self._construct(part, units, zones, k_free, rng)
        if self.strategy == "search" and self.max_rounds:
            merge = self.mode == "merge"
            stats.update(
                improve(
                    part,
                    self.seed,
                    max_rounds=self.max_rounds,
                    recombine_atoms=24 if merge else 30,
                    triple_atoms=10 if merge else 0,
                    merge_split_rounds=200 if merge else 0,
                )
            )
        labels = part.labels()
        self.mean_workload_ = mu
        if self.band is not None:
            checks.check_band_met(self.band, units, labels, mu)
        return labels, stats

    def _problem(self, units, zones, search_adj, mu, k_free) -> Problem:
        free = ~units.locked
        hh_per_grid = max(float(units.households[free].sum()) / max(k_free, 1), 1.0)
        perimeter = 4.0 * math.sqrt(float(units.area[free].sum()) / max(k_free, 1))
        alpha = self.stability / hh_per_grid if self.mode == "reshape" else 0.0
        objective = Objective(
            mu=mu, band=self.band, alpha=alpha, gamma=self.compactness / perimeter
        )
        nbrs = [search_adj.neighbors(i).tolist() for i in range(units.n)]
        nlen = [
            search_adj.length[search_adj.indptr[i] : search_adj.indptr[i + 1]].tolist()
            for i in range(units.n)
        ]
        return Problem(
            w=units.load.tolist(),
            hh=units.households.tolist(),
            orig=units.grid.tolist(),
            zone=zones.tolist(),
            nbrs=nbrs,
            nlen=nlen,
            objective=objective,
            movable=free,
        )

    def _construct(self, part, units, zones, k_free, rng) -> dict:
        """The starting partition: ``target`` regions, constraints already met."""
        if self.strategy == "greedy":
            build.merge_lightest(part, self.target)
            return {"start": "lightest into lightest neighbour"}
        if self.mode == "merge":
            build.merge_cheapest(part, self.target)
            return {"start": "cheapest merges"}
        zone_ids = np.arange(int(zones.max()) + 1)
        free = zones >= 0
        zone_load = np.bincount(zones[free], weights=units.load[free], minlength=len(zone_ids))
        zone_atoms = np.bincount(zones[free], minlength=len(zone_ids))
        k = build.allocate(zone_load, zone_atoms, k_free)
        target = dict(zip(zone_ids.tolist(), k.tolist(), strict=True))
        build.merge_cheapest(part, 0, zone_target=target)
        build.split_heaviest(part, target, rng)
        return {"start": "allocation, merges and splits per zone"}

    # -- results ---------------------------------------------------------------------------
    def _finish(self, units: Units, labels: np.ndarray) -> None:
        geoms = dissolve(units.geoms, labels)
        metric = gpd.GeoSeries(geoms, crs=units.crs).to_crs(units.metric_crs).to_numpy()
        codes, parents = new_grid_codes(units, labels, geoms, self.scheme)
        self.labels_ = pd.Series(
            codes[labels], index=pd.Index(units.codes, name=self.code), name="new_code"
        )
        self.new_grids_ = new_grids_frame(units, labels, geoms, codes, parents)
        self.lineage_ = lineage(units, labels, codes)
        self.metrics_ = plan_metrics(units, labels, self.band, region_metric=metric)


def _zones(units: Units) -> tuple[np.ndarray, Adjacency]:
    """Zone of every unlocked atom (-1 for locked) and the search adjacency.

    A zone is a connected piece of one nesting unit's unlocked atoms: a new
    grid can never span two zones, so each zone needs at least one grid.
    """
    adj = units.adjacency
    rows = np.repeat(np.arange(adj.n), np.diff(adj.indptr))
    keep = ~units.locked[rows] & ~units.locked[adj.indices]
    if units.nest is not None:
        keep &= units.nest[rows] == units.nest[adj.indices]
    search = adj.restricted(keep)
    _, piece = csgraph.connected_components(search.matrix(), directed=False)
    zones = np.full(adj.n, -1, dtype=np.int64)
    free = ~units.locked
    _, zones[free] = np.unique(piece[free], return_inverse=True)
    return zones, search


def _initial_partition(problem: Problem, units: Units) -> Partition:
    """The current grids as regions; a grid whose atoms are not connected starts as pieces."""
    adj = units.adjacency
    same = adj.same_label_mask(units.grid)
    _, piece = csgraph.connected_components(adj.restricted(same).matrix(), directed=False)
    _, labels = np.unique(np.stack([units.grid, piece]), axis=1, return_inverse=True)
    labels = labels.ravel()
    n_regions = int(labels.max()) + 1
    home = np.full(n_regions, -1, dtype=np.int64)
    home[labels] = units.grid
    locked = np.zeros(n_regions, dtype=bool)
    locked[labels] = units.locked
    return Partition(problem, labels, home.tolist(), locked.tolist())


def _durations(clock: dict[str, float]) -> dict[str, float]:
    start = clock["start"]
    out, last = {}, start
    for key in ("prepare_s", "search_s", "plan_s"):
        out[key] = round(clock[key] - last, 3)
        last = clock[key]
    out["total_s"] = round(last - start, 3)
    return out


def workload(
    frame: gpd.GeoDataFrame,
    weights: Mapping[str, float] | None = None,
    metric_crs: Any = None,
) -> pd.Series:
    """Workload of each area: ``sum_k weight_k * x_k / mean_k`` over the frame.

    Parameters
    ----------
    frame : GeoDataFrame
        Areas with the weighted columns (``"area"`` is computed).
    weights : mapping, optional
        Default :data:`DEFAULT_WEIGHTS`.
    metric_crs : CRS-like, optional
        Projected CRS in metres for the area; default the frame's UTM zone.

    Returns
    -------
    Series
        Aligned with ``frame``; 1.0 is an average area when weights sum to 1.
    """
    weights = checks.check_weights(DEFAULT_WEIGHTS if weights is None else weights)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
        raise ValidationError("frame must be a GeoDataFrame with a CRS")
    area = shapely.area(frame.geometry.to_crs(crs_mod.metric_crs(frame, metric_crs)).to_numpy())
    values = checks.weighted_load(frame, weights, area, len(frame))
    return pd.Series(values, index=frame.index, name="workload")
