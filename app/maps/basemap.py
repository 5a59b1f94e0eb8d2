"""Basemaps: none (the default, for an offline intranet), presets, or a tile URL template.

Amap (Gaode) and Tencent tiles are drawn in GCJ-02 (docs/domain.md, "Coordinate
systems"): WGS84 data on them is off by 100–700 m, so a basemap says which datum it is
in and the page builders convert every geometry to it (:attr:`Basemap.crs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gis.errors import ValidationError

__all__ = ["BASEMAP_CRS", "PRESETS", "Basemap", "resolve_basemap"]

#: Datums a basemap may be drawn in. BD-09 (Baidu) tiles use their own tiling
#: scheme too, which Leaflet's Web Mercator cannot show.
BASEMAP_CRS = ("wgs84", "gcj02")


@dataclass(frozen=True)
class Basemap:
    """A tile layer under the map, or none.

    Attributes
    ----------
    name : str
        ``none``, a preset name, or ``custom``.
    url : str or None
        Leaflet URL template with ``{z}``, ``{x}``, ``{y}`` (and ``{s}``), None for none.
    attribution : str
    crs : {"wgs84", "gcj02"}
        Datum of the tiles; geometries are converted to it.
    subdomains : str or None
    max_zoom : int
    """

    name: str
    url: str | None
    attribution: str = ""
    crs: str = "wgs84"
    subdomains: str | None = None
    max_zoom: int = 19


PRESETS: dict[str, Basemap] = {
    "none": Basemap("none", None),
    "osm": Basemap(
        "osm",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
        "wgs84",
        None,
        19,
    ),
    "amap": Basemap(
        "amap",
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1"
        "&scale=1&style=8&x={x}&y={y}&z={z}",
        "&copy; 高德地图 AutoNavi",
        "gcj02",
        "1234",
        18,
    ),
    "amap-satellite": Basemap(
        "amap-satellite",
        "https://webst0{s}.is.autonavi.com/appmaptile?style=6&x={x}&y={y}&z={z}",
        "&copy; 高德地图 AutoNavi",
        "gcj02",
        "1234",
        18,
    ),
}
_TEMPLATE = re.compile(r"^(https?://|/)[^\s\"'<>`]+$")


def resolve_basemap(
    value: str | None,
    *,
    crs: str | None = None,
    attribution: str | None = None,
    subdomains: str | None = None,
    max_zoom: int = 19,
) -> Basemap:
    """The basemap ``value`` names: ``none``, a preset, or a URL template.

    Parameters
    ----------
    value : str or None
        None or ``none`` for no basemap; a key of :data:`PRESETS`; or a tile URL
        template (``http(s)://…`` or a path on this server such as
        ``/tiles/{z}/{x}/{y}.png``) containing ``{z}``, ``{x}`` and ``{y}``.
    crs : {"wgs84", "gcj02"}, optional
        Datum of a URL template (default wgs84); for a preset it must match the
        preset's own or be None.
    attribution, subdomains, max_zoom
        Used for a URL template.

    Returns
    -------
    Basemap

    Raises
    ------
    ValidationError
        For an unknown name, a malformed template or an unknown datum.
    """
    if crs is not None and crs not in BASEMAP_CRS:
        raise ValidationError(f"basemap crs must be one of {list(BASEMAP_CRS)}, got {crs!r}")
    name = (value or "none").strip()
    if name.lower() in PRESETS:
        preset = PRESETS[name.lower()]
        if crs is not None and preset.url is not None and crs != preset.crs:
            raise ValidationError(f"basemap {preset.name!r} is drawn in {preset.crs}, not {crs}")
        return preset
    if not _TEMPLATE.match(name) or not all(k in name for k in ("{z}", "{x}", "{y}")):
        raise ValidationError(
            f"basemap must be one of {list(PRESETS)} or a tile URL template with {{z}}, {{x}} "
            f"and {{y}} (http(s)://host/{{z}}/{{x}}/{{y}}.png or /path/{{z}}/{{x}}/{{y}}.png), "
            f"got {value!r}"
        )
    return Basemap("custom", name, attribution or "", crs or "wgs84", subdomains, max_zoom)
