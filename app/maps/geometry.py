"""Geometries for drawing: simplified, in the basemap's datum, rounded, as GeoJSON dicts.

A page carries every boundary it draws inside its HTML, so boundaries are
simplified (1 m by default: invisible at street zoom) and coordinates rounded to
6 decimals (~0.1 m); that keeps the demo district's 620 grids and 5,490 micro-grids
within a few megabytes. Drawn on a GCJ-02 basemap (Amap, Tencent), every
coordinate is shifted to GCJ-02 first.
"""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import crs as crs_mod
from gis.crs import metric_crs as resolve_metric_crs

__all__ = ["display_geometries", "lonlat_to_display", "records", "round_coords"]

DECIMALS = 6


def display_geometries(
    frame: gpd.GeoDataFrame, simplify_m: float = 1.0, datum: str = "wgs84"
) -> list[dict | None]:
    """GeoJSON geometry dicts of ``frame``, ready to embed.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Any CRS.
    simplify_m : float, default 1.0
        Douglas–Peucker tolerance in metres (topology of each polygon kept); 0
        for none.
    datum : {"wgs84", "gcj02"}
        The basemap's datum.

    Returns
    -------
    list of dict or None
        One geometry per row (None for a missing or empty one).
    """
    if not len(frame):
        return []
    series = frame.geometry
    if simplify_m > 0:
        metric = resolve_metric_crs(series)
        series = series.to_crs(metric).simplify(simplify_m, preserve_topology=True)
    geoms = np.asarray(series.to_crs(4326).array, dtype=object)
    if datum != "wgs84":
        geoms = shapely.transform(geoms, lambda xy: _shift(xy, datum))
    geoms = round_coords(geoms)
    texts = shapely.to_geojson(geoms)
    return [
        None if t is None or g is None or g.is_empty else json.loads(t)
        for t, g in zip(texts, geoms, strict=True)
    ]


def round_coords(geoms: Any) -> Any:
    """Coordinates rounded to :data:`DECIMALS` (display only: may touch validity)."""
    return shapely.transform(geoms, lambda xy: np.round(xy, DECIMALS))


def _shift(xy: np.ndarray, datum: str) -> np.ndarray:
    lon, lat = crs_mod.from_wgs84(xy[:, 0], xy[:, 1], datum)
    return np.column_stack([lon, lat])


def lonlat_to_display(lon: Any, lat: Any, datum: str = "wgs84") -> tuple[np.ndarray, np.ndarray]:
    """WGS84 points in the basemap's datum, rounded; NaN stays NaN."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if datum != "wgs84" and len(lon):
        ok = np.isfinite(lon) & np.isfinite(lat)
        lon, lat = lon.copy(), lat.copy()
        if ok.any():
            lon[ok], lat[ok] = crs_mod.from_wgs84(lon[ok], lat[ok], datum)
    return np.round(lon, DECIMALS), np.round(lat, DECIMALS)


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values, NaN as None (JSON has no NaN)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [{k: _plain(v) for k, v in row.items()} for row in clean.to_dict("records")]


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
