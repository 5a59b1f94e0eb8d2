"""Incidents per grid for a time window, category and source; rates per 1,000 residents and km².

Also the selection and grid lookup of incidents that :mod:`gis.hotspots.trends` shares.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis import crs as crs_mod
from gis.assign import GridIndex
from gis.coverage import incident_lonlat
from gis.errors import CRSError, ValidationError

__all__ = ["grid_counts"]


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
    codes, geoms = checked_grids(grids, code)
    population = _population(grids, population_col)
    mask = selection(incidents, start, end, category, source, time_col)
    taken = incident_grid_codes(incidents, mask, grids, code)
    counts = pd.Series(taken).value_counts().reindex(codes, fill_value=0)
    area_km2 = shapely.area(to_metric(geoms, grids.crs, metric_crs)[0]) / 1e6
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


def checked_grids(grids: Any, code: str) -> tuple[np.ndarray, np.ndarray]:
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


def selection(incidents, start, end, category, source, time_col) -> np.ndarray:
    """Boolean mask of the incidents in the window, categories and sources asked for."""
    if not isinstance(incidents, pd.DataFrame):
        raise ValidationError(f"incidents must be a DataFrame, got {type(incidents).__name__}")
    mask = np.ones(len(incidents), dtype=bool)
    if start is not None or end is not None:
        if time_col not in incidents:
            raise ValidationError(f"incidents has no column time_col={time_col!r} for start/end")
        times = pd.to_datetime(incidents[time_col])
        low, high = time_bound(start, times, "start"), time_bound(end, times, "end")
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


def time_bound(value, times: pd.Series, name: str) -> pd.Timestamp | None:
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


def incident_grid_codes(incidents, mask, grids, code) -> np.ndarray:
    """Grid code (or None) of each selected incident."""
    if "grid_code" in incidents:
        codes = incidents["grid_code"].to_numpy(dtype=object)[mask]
        return np.array([None if pd.isna(c) else str(c) for c in codes], dtype=object)
    lon, lat = incident_lonlat(incidents[mask])
    wgs84 = grids if grids.crs.equals(pyproj.CRS.from_epsg(4326)) else grids.to_crs(4326)
    index = GridIndex(wgs84[[code, wgs84.geometry.name]], code=code)
    return index.assign_xy(lon, lat)["code"].to_numpy(dtype=object)


def to_metric(geoms: np.ndarray, crs: Any, metric_crs: Any) -> tuple[np.ndarray, pyproj.CRS]:
    series = gpd.GeoSeries(geoms, crs=crs)
    target = crs_mod.metric_crs(series, metric_crs)
    if not series.crs.equals(target):
        series = series.to_crs(target)
    return np.asarray(series.array, dtype=object), target
