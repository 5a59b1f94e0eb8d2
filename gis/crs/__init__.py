"""Coordinate systems: the four geographic systems met in China, and the metric CRS.

* :mod:`gis.crs.datums` converts longitude/latitude between WGS84, CGCS2000,
  GCJ-02 and BD-09 (see "Coordinate systems" in ``docs/domain.md``);
* :mod:`gis.crs.china_outline` is the outline inside which map providers apply
  GCJ-02;
* :func:`metric_crs` (:mod:`gis.crs.metric`) picks the projected CRS in metres
  in which every area, distance and tolerance is measured.
"""

from __future__ import annotations

from gis.crs.datums import (
    CRS_NAMES,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    normalize_crs_name,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gis.crs.metric import metric_crs

__all__ = [
    "CRS_NAMES",
    "normalize_crs_name",
    "in_china",
    "convert",
    "to_wgs84",
    "from_wgs84",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "metric_crs",
]
