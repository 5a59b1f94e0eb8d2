"""The analyses behind the map pages and the /coverage and /hotspots endpoints.

Thin, cached calls into ``gis/``: coverage of the whole hierarchy
(:func:`gis.coverage.check_coverage`), incidents per grid
(:func:`gis.hotspots.grid_counts`), Gi* (:class:`gis.hotspots.HotSpots`) and a
heat surface (:func:`gis.hotspots.kernel_density`). Results are cached on the
:class:`~app.services.map_data.MapData` they come from, so a new parameter set costs only
what changed, and new data (a new MapData) starts afresh.

Each part is kept as long as what it depends on. For data read from the database
(:attr:`MapData.in_database`):

* the coverage of the areas (gaps, overlaps, slivers, nesting: a city's takes
  tens of seconds) and the grids' contiguity weights depend on the generation's
  areas alone: they are kept on disk per generation version and survive new
  incidents and restarts; the staff and the incidents outside every grid are
  checked afresh (the incidents the assignment found in no grid, from the database);
* incidents per grid are counted by the database (``GROUP BY`` over the
  assignments), not read into Python, and Gi* runs on those counts;
* with :data:`AGGREGATE_FROM` incidents or more (a city), the heat surface is
  smoothed from counts per micro-grid and the clustered points are a sample the
  database draws: no analysis of the district map reads every incident.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from app.db import snapshots
from app.services.map_data import MapData, StoredData
from gis.coverage import DEFECT_COLUMNS, CoverageReport, check_coverage
from gis.errors import ValidationError
from gis.hotspots import HotSpots, contiguity_weights, grid_counts, kernel_density
from gis.hotspots.counts import checked_grids, to_metric
from gis.staff import staffed_codes
from gis.vocabulary import AREA_LEVELS, LOCAL_TIMEZONE

__all__ = [
    "AGGREGATE_FROM",
    "MEASURES",
    "Measure",
    "Selection",
    "cached",
    "coverage",
    "grid_counts_of",
    "grid_stats",
    "heat_points",
    "incident_sample",
    "prepare",
    "select_incidents",
]

#: What a choropleth or Gi* can be computed on: incidents per grid, per 1,000
#: residents or per km².
Measure = Literal["count", "rate_per_1000", "per_km2"]
#: Each :data:`Measure` with its label.
MEASURES: dict[str, str] = {
    "count": "incidents",
    "rate_per_1000": "incidents per 1,000 residents",
    "per_km2": "incidents per km²",
}
_CACHE_SIZE = 48
_LOCK = threading.Lock()
log = logging.getLogger("gridmap.maps")
T = TypeVar("T")
#: Incidents from which the heat surface and the clustered points come from aggregates
#: and a sample the database draws, instead of every incident (a city's million).
AGGREGATE_FROM = 200_000
_GIS = Path(__file__).resolve().parents[2] / "gis"
#: The code behind what is kept on disk per generation version.
_COVERAGE_CODE = (_GIS / "coverage.py", _GIS / "crs", _GIS / "codes.py")
#: The code the inner points come from: this module (shapely's point_on_surface).
_INNER_POINTS_CODE = (Path(__file__).resolve(),)
_WEIGHTS_CODE = (_GIS / "hotspots" / "weights.py", _GIS / "hotspots" / "counts.py", _GIS / "crs")


@dataclass(frozen=True)
class Selection:
    """Which incidents count: a half-open time window, categories and sources.

    Attributes
    ----------
    start, end : pandas.Timestamp or None
        ``start <= reported_at < end``, in Asia/Shanghai.
    category : tuple of str
        Category codes; a code selects every code it prefixes (``04``: the whole
        public-safety class), as in :func:`gis.hotspots.grid_counts`.
    source : tuple of str
        Sources, exact match.
    """

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    category: tuple[str, ...] = ()
    source: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, start: Any = None, end: Any = None, category: Any = None, source: Any = None
    ) -> Selection:
        """Build a selection from user input (strings, dates, lists or comma lists).

        Raises
        ------
        ValidationError
            For an unreadable time, ``end <= start``, or a malformed category.
        """
        low, high = _instant(start, "start"), _instant(end, "end")
        if low is not None and high is not None and high <= low:
            raise ValidationError(f"end ({end}) must be after start ({start})")
        categories = _codes(category, "category")
        if any(not (c.isascii() and c.isdigit()) for c in categories):
            raise ValidationError(
                f"category must be digits (taxonomy codes such as 04 or 0401), got {category!r}"
            )
        return cls(low, high, categories, _codes(source, "source"))

    @property
    def incident_filter(self) -> snapshots.IncidentFilter:
        """The same selection as the database applies it."""
        return snapshots.IncidentFilter(self.start, self.end, self.category, self.source)

    @property
    def gis_args(self) -> dict[str, Any]:
        """Keyword arguments of :func:`gis.hotspots.grid_counts` for this selection."""
        return {
            "start": self.start,
            "end": self.end,
            "category": list(self.category) or None,
            "source": list(self.source) or None,
        }

    def describe(self) -> str:
        """One line for a legend: window, categories, sources."""
        low = self.start.strftime("%Y-%m-%d") if self.start is not None else "…"
        high = self.end.strftime("%Y-%m-%d") if self.end is not None else "…"
        window = "all time" if self.start is None and self.end is None else f"{low} – {high}"
        return "; ".join(
            [
                window,
                "category " + (", ".join(self.category) or "all"),
                "source " + (", ".join(self.source) or "all"),
            ]
        )


def _instant(value: Any, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | date | datetime | pd.Timestamp):
        raise ValidationError(f"{name} must be a date or time, got {value!r}")
    try:
        stamp = pd.Timestamp(value)
        if stamp is not pd.NaT:
            # out-of-range instants fail here, on the shift to China Standard Time
            return (
                stamp.tz_localize(LOCAL_TIMEZONE)
                if stamp.tzinfo is None
                else stamp.tz_convert(LOCAL_TIMEZONE)
            )
    except (TypeError, ValueError, OverflowError) as error:
        raise ValidationError(
            f"{name} must be a date or time such as 2023-03-01 or "
            f"2023-03-01T08:00:00+08:00, got {value!r}"
        ) from error
    raise ValidationError(f"{name} must be a date or time, got {value!r}")


def _codes(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set) or not all(isinstance(v, str) for v in items):
        raise ValidationError(f"{name} must be strings, got {value!r}")
    return tuple(sorted({v.strip() for v in items if v.strip()}))


# -- caching on the data ---------------------------------------------------------------
def cached(data: MapData, key: tuple, build: Callable[[], T]) -> T:
    """``build()`` once per ``key`` for this data, keeping the newest results.

    A caller asking for a key being built waits for that build (see :func:`prepare`).
    """
    with _LOCK:
        store: OrderedDict = data.cache.setdefault("analysis", OrderedDict())
        if key in store:
            store.move_to_end(key)
            return store[key]
        building: dict = data.cache.setdefault("building", {})
        pending = building.get(key)
        mine: Future = Future()
        if pending is None:
            building[key] = mine
    if pending is not None:
        return pending.result()
    try:
        value = build()  # outside the lock: builds of different keys run side by side
    except BaseException as error:
        with _LOCK:
            building.pop(key, None)
        mine.set_exception(error)
        raise
    with _LOCK:
        store[key] = value
        while len(store) > _CACHE_SIZE:
            store.popitem(last=False)
        building.pop(key, None)
    mine.set_result(value)
    return value


def prepare(data: MapData, jobs: Sequence[Callable[[], Any]]) -> None:
    """Start ``jobs`` (analyses through :func:`cached`) in background threads: what waits on
    the database runs beside what computes, and whoever asks next waits for the result."""
    if data.in_database is None:
        return  # nothing waits on the database: no gain

    def run(job: Callable[[], Any]) -> None:
        try:
            job()
        except Exception:  # the caller asking for it gets the error itself
            log.debug("prepared analysis failed", exc_info=True)

    for job in jobs:
        threading.Thread(target=run, args=(job,), name="gridmap-analysis", daemon=True).start()


# -- analyses --------------------------------------------------------------------------
def coverage(data: MapData, **tolerances: float) -> CoverageReport:
    """Coverage defects of every level, the staff roster and the incidents.

    ``tolerances`` are passed to :func:`gis.coverage.check_coverage`. The same report
    as one call over the areas, staff and incidents, in two parts: the areas' own
    (kept per generation version) and the staff and incidents on the grids.
    """
    key = ("coverage", tuple(sorted(tolerances.items())))
    return cached(data, key, lambda: _coverage(data, tolerances))


def _coverage(data: MapData, tolerances: dict[str, float]) -> CoverageReport:
    grids = data.level("grid")
    if not len(grids):  # check_coverage says what is wrong
        incidents = data.incidents[["id", "lon", "lat"]]
        return check_coverage(data.all_areas(), data.staff, incidents, **tolerances)
    areas = _area_coverage(data, tolerances)
    stored = data.in_database
    if stored is not None:
        with stored.engine.connect() as conn:
            # only those the assignment found in no grid can be outside every grid
            incidents = snapshots.uncovered_incidents(conn)
    else:
        incidents = data.incidents[["id", "lon", "lat"]]
    people = _people_coverage(data, areas, incidents, tolerances)
    found = people.defects[people.defects["type"].isin(["unstaffed", "outside_incident"])]
    # The areas' defect types all come before these two: the order stays that of one
    # report. Rebuilt from records as gis.coverage builds its frame (the same dtypes).
    records = [*areas.defects.to_dict("records"), *found.to_dict("records")]
    frame = pd.DataFrame.from_records(records, columns=DEFECT_COLUMNS)
    frame["area_m2"] = frame["area_m2"].astype(float)
    defects = gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")
    staffing = pd.concat(
        [people.staffing, _micro_staffing(data, staffed_codes(data.staff))], ignore_index=True
    )
    return CoverageReport(defects, areas.levels, areas.metric_crs, people.settings, staffing)


def _area_coverage(data: MapData, tolerances: dict[str, float]) -> CoverageReport:
    """Gaps, overlaps, slivers, invalid geometries and nesting: the areas alone."""
    stored = data.stored

    def build() -> CoverageReport:
        return check_coverage(data.all_areas(), **tolerances)

    store = stored.store("coverage", *_COVERAGE_CODE) if stored is not None else None
    if stored is None or store is None:
        return cached(data, ("area_coverage", tuple(sorted(tolerances.items()))), build)
    path = store.named(
        stored.database,
        stored.generation_id,
        stored.stamp(AREA_LEVELS),
        tuple(sorted(tolerances.items())),
    )
    return store.load(path, build, CoverageReport)


def _people_coverage(
    data: MapData, areas: CoverageReport, incidents: pd.DataFrame, tolerances: dict[str, float]
) -> CoverageReport:
    """Unstaffed grids and incidents outside every grid: kept on disk per generation
    version, staff roster and those incidents (a new incident inside a grid keeps it)."""

    def build() -> CoverageReport:
        grids = data.level("grid")
        return check_coverage(
            grids, data.staff, incidents, metric_crs=areas.metric_crs, **tolerances
        )

    stored = data.stored
    store = stored.store("coverage_staff", *_COVERAGE_CODE, _GIS / "staff.py") if stored else None
    if stored is None or store is None:
        return build()
    path = store.named(
        stored.database,
        stored.generation_id,
        stored.stamp(AREA_LEVELS),
        (
            tuple(sorted(tolerances.items())),
            _digest(_staffing_rows(data.staff)),
            _digest(incidents),
        ),
    )
    return store.load(path, build, CoverageReport)


def _staffing_rows(staff: pd.DataFrame) -> pd.DataFrame:
    """What of the roster the staffing rule reads (gis.staff.staffed_codes): a city's
    40,000 rows hashed whole took half a second of its first page after each change."""
    return staff[[c for c in ("area_code", "role", "staffs") if c in staff]]


def _digest(frame: pd.DataFrame) -> str:
    """A digest of a frame's content (columns and values)."""
    hashed = pd.util.hash_pandas_object(frame.astype(object), index=False).to_numpy()
    return hashlib.sha256(repr(list(frame.columns)).encode() + hashed.tobytes()).hexdigest()


def _micro_staffing(data: MapData, staffed: set[str]) -> pd.DataFrame:
    """The micro-grids' rows of :attr:`CoverageReport.staffing`."""
    micro = data.level("micro_grid")
    codes = micro["code"].astype(str).to_numpy(dtype=object)
    parent = micro["parent_code"]
    parents = np.where(parent.isna().to_numpy(), None, parent.astype(str).to_numpy(dtype=object))
    return pd.DataFrame(
        {
            "code": codes,
            "level": "micro_grid",
            "parent_code": parents,
            "staffed": pd.Index(codes, dtype=object).isin(staffed),
        }
    )


def select_incidents(data: MapData, selection: Selection) -> pd.DataFrame:
    """The incidents of ``selection``, with the semantics of :func:`gis.hotspots.grid_counts`."""
    incidents = data.incidents
    keep = np.ones(len(incidents), dtype=bool)
    times = incidents["reported_at"]
    if selection.start is not None:
        keep &= (times >= selection.start).to_numpy()
    if selection.end is not None:
        keep &= (times < selection.end).to_numpy()
    if selection.category:
        category = incidents["category"].astype("string")
        keep &= category.str.startswith(selection.category).fillna(False).to_numpy(dtype=bool)
    if selection.source:
        keep &= incidents["source"].isin(selection.source).to_numpy()
    return incidents[keep]


def grid_stats(
    data: MapData,
    selection: Selection,
    permutations: int = 999,
    seed: int = 0,
    fdr: bool = False,
    alpha: float = 0.10,
    value: str = "count",
) -> gpd.GeoDataFrame:
    """Per grid: counts, rates, Gi* z, p and confidence bin of ``value``.

    Returns
    -------
    geopandas.GeoDataFrame
        The grids (EPSG:4326) with ``code, name, kind, parent_code, population,
        households, count, rate_per_1000, area_km2, per_km2, z, p, bin``;
        ``attrs`` has ``selected`` and ``unassigned`` (incidents of the
        selection that no grid took) and ``thresholds`` (p cut-off per bin).
    """
    if value not in MEASURES:
        raise ValidationError(f"value must be one of {list(MEASURES)}, got {value!r}")
    key = ("grid_stats", selection, permutations, seed, fdr, alpha, value)
    return cached(
        data, key, lambda: _grid_stats(data, selection, permutations, seed, fdr, alpha, value)
    )


def _grid_stats(data, selection, permutations, seed, fdr, alpha, value) -> gpd.GeoDataFrame:
    grids = data.level("grid")
    counts = grid_counts_of(data, selection)
    analysed = counts.assign(**{value: counts[value].fillna(0.0)})  # no residents: no rate
    model = HotSpots(
        permutations=permutations, seed=seed, fdr=fdr, alpha=alpha, weights=_weights(data)
    ).fit(analysed, column=value)
    columns = ["code", "name", "kind", "parent_code", "households"]
    out = grids[[c for c in columns if c in grids]].copy()
    for column in ("population", "count", "rate_per_1000", "area_km2", "per_km2"):
        if column in counts:
            out[column] = counts[column].to_numpy()
    out["z"], out["p"], out["bin"] = model.z_, model.p_, model.bin_
    result = gpd.GeoDataFrame(out, geometry=grids.geometry.to_numpy(), crs=grids.crs)
    result.attrs.update(
        counts.attrs,
        thresholds=model.thresholds_,
        value=value,
        permutations=permutations,
        fdr=fdr,
        alpha=alpha,
        seed=seed,
    )
    return result


def grid_counts_of(data: MapData, selection: Selection) -> gpd.GeoDataFrame:
    """:func:`gis.hotspots.grid_counts` of the selection: counted by the database when the
    incidents are all there, else from the frame."""
    stored = data.in_database
    if stored is None:
        return grid_counts(data.incidents, data.level("grid"), **selection.gis_args)
    # at city scale the heat surface needs the micro-grids' counts: one query for both
    counted = _counted(data, stored, selection, micro_grids=_aggregated(data) is not None)
    per_grid = counted.dropna(subset=["grid_code"]).groupby("grid_code")["n"].sum()
    if selection.incident_filter.everything:  # assignments counted: the rest took no grid
        selected = max(stored.incidents, int(counted["n"].sum()))
    else:
        selected = int(counted["n"].sum())
    return _counts_frame(data, per_grid, selected)


def _counted(
    data: MapData, stored: StoredData, selection: Selection, micro_grids: bool = False
) -> pd.DataFrame:
    """Incidents of the selection per grid (or micro-grid), asked of the database once."""

    def count() -> pd.DataFrame:
        with stored.engine.connect() as conn:
            return snapshots.incident_counts(conn, selection.incident_filter, micro_grids)

    return cached(data, ("counted", selection, micro_grids), count)


def _counts_frame(data: MapData, per_grid: pd.Series, selected: int) -> gpd.GeoDataFrame:
    """What :func:`gis.hotspots.grid_counts` returns, from counts per grid code."""
    grids = data.level("grid")
    codes, geoms = checked_grids(grids, "code")
    population = pd.to_numeric(grids["population"], errors="coerce").to_numpy(dtype=float)
    counts = per_grid.reindex(codes, fill_value=0)
    area_km2 = cached(
        data, ("grid_area_km2",), lambda: shapely.area(to_metric(geoms, grids.crs, None)[0]) / 1e6
    )
    out: dict[str, Any] = {"code": codes, "count": counts.to_numpy(dtype=np.int64)}
    out["population"] = population
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = 1000.0 * out["count"] / population
    out["rate_per_1000"] = np.where(population > 0, rate, np.nan)
    out["area_km2"] = area_km2
    out["per_km2"] = out["count"] / area_km2
    frame = gpd.GeoDataFrame(out, geometry=geoms, crs=grids.crs, index=grids.index)
    frame.attrs.update(selected=int(selected), unassigned=int(selected - counts.sum()))
    return frame


def _weights(data: MapData) -> Any:
    """Queen contiguity of the grids (as :class:`gis.hotspots.HotSpots` builds it), kept per
    generation version on disk."""
    import libpysal

    def build() -> tuple[dict, list]:
        w, _ = contiguity_weights(data.level("grid"))
        return {k: list(v) for k, v in w.neighbors.items()}, list(w.id_order)

    def kept() -> tuple[dict, list]:
        stored = data.stored
        store = stored.store("weights", *_WEIGHTS_CODE) if stored is not None else None
        if stored is None or store is None:
            return build()
        path = store.named(stored.database, stored.generation_id, stored.stamp(("grid",)))
        return store.load(path, build, tuple)

    def weights() -> Any:
        neighbours, ids = kept()
        return libpysal.weights.W(neighbours, id_order=ids, silence_warnings=True)

    return cached(data, ("grid_weights",), weights)


def heat_points(
    data: MapData,
    selection: Selection,
    bandwidth_m: float = 150.0,
    cell_m: float = 100.0,
    min_share: float = 0.05,
) -> pd.DataFrame:
    """Cells of a kernel density surface of the selection: ``lat, lon, weight`` (0–1].

    With :data:`AGGREGATE_FROM` incidents or more in the database, the incidents are
    binned per micro-grid (per grid without one) by the database and placed at a point
    inside it: micro-grids are about the size of a cell, and the surface is smoothed
    over several.
    """
    key = ("heat", selection, bandwidth_m, cell_m, min_share)

    def build() -> pd.DataFrame:
        stored = _aggregated(data)
        if stored is not None:
            lon, lat, weights = _binned(data, stored, selection)
        else:
            chosen = select_incidents(data, selection)
            lon, lat = chosen["lon"].to_numpy(float), chosen["lat"].to_numpy(float)
            weights = None
        if not np.isfinite(lon).any():
            return pd.DataFrame({"lat": [], "lon": [], "weight": []})
        surface = kernel_density(lon, lat, bandwidth_m=bandwidth_m, cell_m=cell_m, weights=weights)
        return surface.to_points(min_share)

    return cached(data, key, build)


def _aggregated(data: MapData) -> StoredData | None:
    """The database, when the incidents are there and too many to read for a picture."""
    stored = data.in_database
    return stored if stored is not None and stored.incidents >= AGGREGATE_FROM else None


def _binned(
    data: MapData, stored: StoredData, selection: Selection
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Incidents per micro-grid (or grid) at a point inside it: ``lon, lat, count``."""
    counted = _counted(data, stored, selection, micro_grids=True).dropna(subset=["grid_code"])
    places = cached(data, ("inner_points",), lambda: _kept_inner_points(data))
    at = places.index.get_indexer(counted["micro_grid_code"].to_numpy(dtype=object))
    grid_at = places.index.get_indexer(counted["grid_code"].to_numpy(dtype=object))
    at = np.where(at >= 0, at, grid_at)  # no micro-grid: the grid's point
    found = at >= 0
    return (
        places["lon"].to_numpy(float)[at[found]],
        places["lat"].to_numpy(float)[at[found]],
        counted["n"].to_numpy(dtype=float)[found],
    )


def _kept_inner_points(data: MapData) -> pd.DataFrame:
    """:func:`_inner_points`, kept on disk per generation version: a new incident reloads
    the map data, and a city's 40,000 points on surface took a second of its first page."""
    stored = data.stored
    store = stored.store("inner_points", *_INNER_POINTS_CODE) if stored is not None else None
    if stored is None or store is None:
        return _inner_points(data)
    path = store.named(stored.database, stored.generation_id, stored.stamp(("grid", "micro_grid")))
    return store.load(path, lambda: _inner_points(data), pd.DataFrame)


def _inner_points(data: MapData) -> pd.DataFrame:
    """A point inside each grid and micro-grid, by code: ``lon, lat``."""
    frames = [data.level(level) for level in ("grid", "micro_grid")]
    every = pd.concat([f[["code", "geometry"]] for f in frames], ignore_index=True)
    points = shapely.point_on_surface(np.asarray(every["geometry"].array, dtype=object))
    return pd.DataFrame(
        {"lon": shapely.get_x(points), "lat": shapely.get_y(points)},
        index=pd.Index(every["code"].astype(str).to_numpy(dtype=object), dtype=object),
    )


def incident_sample(
    data: MapData, selection: Selection, limit: int, seed: int = 0
) -> tuple[pd.DataFrame, int]:
    """Incidents of the selection to draw as points, and how many the selection has.

    All of them (the caller samples ``limit`` of the located), or with
    :data:`AGGREGATE_FROM` incidents or more in the database a repeatable sample of
    about ``limit`` located ones drawn there, cut to ``limit`` here.
    """
    stored = _aggregated(data)
    if stored is None:
        chosen = select_incidents(data, selection)
        return chosen, len(chosen)
    selected = int(grid_counts_of(data, selection).attrs["selected"])
    key = ("sample", selection, limit, seed)

    def draw() -> pd.DataFrame:
        # a margin over the share wanted: the sample's size varies, the located are fewer
        percent = 100.0 * 1.25 * limit / max(selected, 1)
        with stored.engine.connect() as conn:
            sample = snapshots.incident_sample(conn, selection.incident_filter, percent, seed)
        if len(sample) > limit:
            rng = np.random.default_rng(seed)
            sample = sample.iloc[np.sort(rng.choice(len(sample), limit, replace=False))]
        return sample.reset_index(drop=True)

    return cached(data, key, draw), selected


def staff_summary(
    staff: pd.DataFrame, codes: Sequence[str], roles: dict[str, str]
) -> dict[str, str]:
    """``code → "网格长 张三、网格员 李四"`` for the areas in ``codes`` that have staff."""
    wanted = staff[staff["area_code"].isin(set(codes))]
    labels = wanted["role"].map(roles).fillna(wanted["role"]) + " " + wanted["name"]
    return labels.groupby(wanted["area_code"]).agg("、".join).to_dict()
