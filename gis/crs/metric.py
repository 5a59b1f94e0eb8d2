"""The one rule for the projected CRS in which gridmap measures metres.

Areas, distances and snapping tolerances need a CRS in metres. Every module
that measures asks :func:`metric_crs`, so the same data are always measured in
the same CRS: the one the caller names, else the data's own CRS when it is
already projected in metres, else the WGS84 UTM zone of the centre of the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj

from gis.errors import CRSError

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["metric_crs"]

#: Unit names pyproj gives an axis in metres.
_METRE = ("metre", "meter", "m")

#: West, south, east, north in degrees (WGS84).
LonLatBounds = tuple[float, float, float, float]


def metric_crs(
    data: gpd.GeoSeries | gpd.GeoDataFrame | LonLatBounds, given: Any = None
) -> pyproj.CRS:
    """The projected CRS in metres in which to measure ``data``.

    Parameters
    ----------
    data : geopandas.GeoSeries, geopandas.GeoDataFrame or (west, south, east, north)
        Data with a CRS, or their bounds in WGS84 degrees.
    given : anything pyproj.CRS accepts, optional
        The caller's explicit choice (a ``metric_crs=`` argument); checked and
        returned, whatever the data.

    Returns
    -------
    pyproj.CRS
        ``given`` when set; else the data's CRS when it is projected in metres;
        else the WGS84 UTM zone (EPSG:326xx north, 327xx south) of the centre of
        the data's bounds. For a district-sized extent that is the zone
        ``GeoDataFrame.estimate_utm_crs()`` finds, without its search of the
        PROJ database (most of a second per call).

    Raises
    ------
    CRSError
        If ``given`` is not a CRS or not projected in metres, if the data have no
        CRS, or if they have no finite coordinates to take a centre from.
    """
    if given is not None:
        return _checked(given)
    if isinstance(data, tuple):
        west, south, east, north = data
    elif data.crs is None:
        raise CRSError("the data have no CRS; set it with set_crs(...)")
    elif _is_metric(data.crs):
        return data.crs
    else:
        west, south, east, north = data.to_crs(4326).total_bounds
    return _utm_zone((west + east) / 2, (south + north) / 2)


def _is_metric(crs: pyproj.CRS) -> bool:
    """Whether ``crs`` is projected with both axes in metres."""
    return crs.is_projected and all(axis.unit_name in _METRE for axis in crs.axis_info)


def _checked(given: Any) -> pyproj.CRS:
    try:
        crs = pyproj.CRS.from_user_input(given)
    except pyproj.exceptions.CRSError as error:
        raise CRSError(f"metric_crs={given!r} is not a CRS pyproj understands: {error}") from error
    if not _is_metric(crs):
        raise CRSError(
            f"metric_crs must be a projected CRS in metres (e.g. a UTM zone), got {crs.to_string()}"
        )
    return crs


def _utm_zone(lon: float, lat: float) -> pyproj.CRS:
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise CRSError(f"no UTM zone for data without coordinates (centre {lon!r}, {lat!r})")
    zone = int(np.clip((lon + 180) // 6 + 1, 1, 60))
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)
