"""Gaussian kernel density of incidents on a square raster, for heat layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from scipy import ndimage

from gis import crs as crs_mod
from gis.errors import ValidationError

__all__ = ["DensitySurface", "kernel_density"]

_MAX_CELLS = 4_000_000


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
        return crs_mod.metric_crs(gpd.GeoSeries([], crs=4326), metric_crs)
    if bounds is not None:
        return crs_mod.metric_crs(_checked_bounds(bounds))
    if not len(lon):
        raise ValidationError("no located point: give bounds for an empty surface")
    return crs_mod.metric_crs((lon.min(), lat.min(), lon.max(), lat.max()))


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
