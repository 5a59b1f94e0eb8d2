"""The analyses behind the map pages and the /coverage and /hotspots endpoints.

Thin, cached calls into ``gis/``: coverage of the whole hierarchy
(:func:`gis.coverage.check_coverage`), incidents per grid
(:func:`gis.hotspots.grid_counts`), Gi* (:class:`gis.hotspots.HotSpots`) and a
heat surface (:func:`gis.hotspots.kernel_density`). Results are cached on the
:class:`~app.services.map_data.MapData` they come from, so a new parameter set costs only
what changed, and new data (a new MapData) starts afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd

from app.services.map_data import MapData
from gis.coverage import CoverageReport, check_coverage
from gis.errors import ValidationError
from gis.hotspots import HotSpots, grid_counts, kernel_density
from gis.vocabulary import LOCAL_TIMEZONE

__all__ = [
    "MEASURES",
    "Measure",
    "Selection",
    "cached",
    "coverage",
    "grid_stats",
    "heat_points",
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
T = TypeVar("T")


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
    """``build()`` once per ``key`` for this data, keeping the newest results."""
    with _LOCK:
        store: OrderedDict = data.cache.setdefault("analysis", OrderedDict())
        if key in store:
            store.move_to_end(key)
            return store[key]
    value = build()  # outside the lock: builds of different keys run side by side
    with _LOCK:
        store[key] = value
        while len(store) > _CACHE_SIZE:
            store.popitem(last=False)
    return value


# -- analyses --------------------------------------------------------------------------
def coverage(data: MapData, **tolerances: float) -> CoverageReport:
    """Coverage defects of every level, the staff roster and the incidents.

    ``tolerances`` are passed to :func:`gis.coverage.check_coverage`.
    """
    key = ("coverage", tuple(sorted(tolerances.items())))
    incidents = data.incidents[["id", "lon", "lat"]]
    return cached(
        data, key, lambda: check_coverage(data.all_areas(), data.staff, incidents, **tolerances)
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
    counts = grid_counts(data.incidents, grids, **selection.gis_args)
    analysed = counts.assign(**{value: counts[value].fillna(0.0)})  # no residents: no rate
    model = HotSpots(permutations=permutations, seed=seed, fdr=fdr, alpha=alpha).fit(
        analysed, column=value
    )
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


def heat_points(
    data: MapData,
    selection: Selection,
    bandwidth_m: float = 150.0,
    cell_m: float = 100.0,
    min_share: float = 0.05,
) -> pd.DataFrame:
    """Cells of a kernel density surface of the selection: ``lat, lon, weight`` (0–1]."""
    key = ("heat", selection, bandwidth_m, cell_m, min_share)

    def build() -> pd.DataFrame:
        chosen = select_incidents(data, selection)
        lon, lat = chosen["lon"].to_numpy(float), chosen["lat"].to_numpy(float)
        if not np.isfinite(lon).any():
            return pd.DataFrame({"lat": [], "lon": [], "weight": []})
        surface = kernel_density(lon, lat, bandwidth_m=bandwidth_m, cell_m=cell_m)
        return surface.to_points(min_share)

    return cached(data, key, build)


def staff_summary(
    staff: pd.DataFrame, codes: Sequence[str], roles: dict[str, str]
) -> dict[str, str]:
    """``code → "网格长 张三、网格员 李四"`` for the areas in ``codes`` that have staff."""
    wanted = staff[staff["area_code"].isin(set(codes))]
    labels = wanted["role"].map(roles).fillna(wanted["role"]) + " " + wanted["name"]
    return labels.groupby(wanted["area_code"]).agg("、".join).to_dict()
