"""Layers of the map pages drawn from the app's own vector tiles (``/tiles/...``).

A page that embeds every polygon grows with the city: 39,000 micro-grids are
megabytes of JSON the browser parses before it draws anything. On a served page
the micro-grids, and any level above :attr:`TileOptions.threshold` features (a
city's grids), are drawn by Leaflet.VectorGrid
(folium's :class:`~folium.plugins.VectorGridProtobuf`, its script from the pinned
``leaflet.vectorgrid`` package) from ``/tiles/{layer}/{z}/{x}/{y}.mvt``; the tiles
carry ``code``, ``name``, ``level`` and ``kind``, and what the page colours grids
by (counts, Gi* classes) stays in the page as one small table per code, so the
tiles are the same public boundary tiles for every visitor and cache well.

Tiles are WGS84 (Web Mercator). A basemap in GCJ-02 needs shifted geometries, so
such pages keep embedding (:func:`use_tiles`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from folium.plugins import VectorGridProtobuf
from folium.template import Template

from app.config import MapSettings
from app.maps.elements import add_json_block, js_json

__all__ = [
    "TileOptions",
    "VectorTiles",
    "grid_tile_layers",
    "heat_cell_m",
    "micro_grid_tiles",
    "outline_tiles",
    "served_tiles",
    "tile_url",
    "use_tiles",
]

#: Features of a level above which a served page draws it from tiles: the demo's 620
#: grids (≈ 0.5 MB embedded with their numbers) stay in the page, a city's 3,900 grids
#: (≈ 3 MB) come from tiles.
DEFAULT_THRESHOLD = 2000
#: Micro-grids (≈ 100 m) are asked for from this zoom on (≈ 19 m a pixel); below, a
#: tile of a city's micro-grids is hundreds of kilobytes of hair-thin lines.
MICRO_MIN_ZOOM = 13


@dataclass(frozen=True)
class TileOptions:
    """Where a served page finds tiles, and when it uses them.

    Attributes
    ----------
    url : str
        Template with ``{layer}``, ``{z}``, ``{x}``, ``{y}``, e.g.
        ``/tiles/{layer}/{z}/{x}/{y}.mvt?v=1a2b`` (the data version in ``v`` makes a
        new URL when the data change, so browsers may keep tiles for long).
    threshold : int
        A level with more features than this is drawn from tiles.
    """

    url: str
    threshold: int = DEFAULT_THRESHOLD


def use_tiles(tiles: TileOptions | None, features: int, datum: str, always: bool = False) -> bool:
    """True when a level of ``features`` areas is drawn from tiles on this page.

    ``always``: whatever its size (the micro-grids, hidden until asked for, cost a
    served page nothing that way).
    """
    if tiles is None or datum != "wgs84":
        return False
    return always or features > tiles.threshold


def served_tiles(root: str, version: Hashable, settings: MapSettings) -> TileOptions | None:
    """The tiles of a page served under ``root`` for data ``version`` (None: embed all)."""
    if not settings.vector_tiles:
        return None
    stamp = hashlib.sha256(repr(version).encode()).hexdigest()[:12]
    return TileOptions(
        f"{root}/tiles/{{layer}}/{{z}}/{{x}}/{{y}}.mvt?v={stamp}", settings.tile_threshold
    )


def tile_url(tiles: TileOptions, layer: str) -> str:
    return tiles.url.replace("{layer}", layer)


class VectorTiles(VectorGridProtobuf):
    """One tile layer of a page: its pane, a style (constant or by code), a tooltip.

    Parameters
    ----------
    url : str
        Tile URL template of one layer (``{z}/{x}/{y}``).
    layer : str
        The layer name inside the tiles (``micro_grids``, ``grids`` …).
    name : str
        Name in the layer control.
    pane : str
        Leaflet pane (see :data:`app.maps.layers.PANES`).
    style : dict
        Leaflet path style of every feature, or the default one with ``fills``.
    tooltip : dict, optional
        Property → label of the hover tooltip; the properties come from the tile or,
        for codes in ``table``, from the table.
    table : dict, optional
        ``{"columns": [...], "rows": {code: [...]}}``: numbers per code the tiles
        do not carry (written once as a JSON block).
    fills : dict, optional
        ``{"palette": [colour, …], "codes": {code: index}}``: features with an index
        are filled with that colour, the others not drawn (choropleth, hot spots).
    link : str, optional
        URL template with ``{code}``: a click opens a popup linking there.
    show : bool
    min_zoom : int
        No tiles are asked for below this zoom (the layer stays ticked).
    """

    _template = Template("""
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = gridmapVectorTiles({{ this.url|tojson }},
            {{ this.layer|tojson }}, {{ this.setup }});
        {%- endmacro %}
    """)
    default_js = [("vectorGrid", "leaflet.vectorgrid")]  # localize() points it at our copy

    def __init__(
        self,
        url: str,
        layer: str,
        name: str,
        pane: str,
        style: dict,
        tooltip: dict[str, str] | None = None,
        table: dict | None = None,
        fills: dict[str, str] | None = None,
        link: str | None = None,
        show: bool = True,
        min_zoom: int = 0,
    ) -> None:
        super().__init__(url, name=name, show=show)
        self.min_zoom = min_zoom
        self.layer = layer
        self.pane = pane
        self.style = style
        self.tooltip = tooltip
        self.table = table
        self.fills = fills
        self.link = link

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # renders into the figure
        table = (
            add_json_block(self, f"tiles-{self.get_name()}", js_json(self.table))
            if self.table is not None
            else "null"
        )
        fills = (
            add_json_block(self, f"fills-{self.get_name()}", js_json(self.fills))
            if self.fills is not None
            else "null"
        )
        self.setup = (
            "{"
            f"pane: {json.dumps(self.pane)}, style: {js_json(self.style)}, "
            f"tooltip: {js_json(self.tooltip)}, table: {table}, fills: {fills}, "
            f"link: {json.dumps(self.link)}, minZoom: {int(self.min_zoom)}"
            "}"
        )
        super().render(**kwargs)


#: Grid tooltip fields a tiled page leaves out: the tiles carry the name, and the staff
#: (tens of bytes a grid) are one click away on the grid's own page.
TABLE_LEFT_OUT = ("staff",)


def _table(props: pd.DataFrame, columns: list[str]) -> dict:
    """``{columns, rows: {code: [...]}, dicts}``: text columns with repeats (community
    names) are written once each and referred to by position."""
    values = props[columns].astype(object).where(props[columns].notna(), None)
    dicts: dict[str, list] = {}
    for at, column in enumerate(columns):
        series = values[column]
        if series.map(lambda v: isinstance(v, str)).all() and series.nunique() < len(series) / 2:
            labels = sorted(series.unique())
            dicts[str(at)] = labels
            values[column] = series.map({label: k for k, label in enumerate(labels)})
    rows = dict(zip(props["code"].astype(str), values.to_numpy().tolist(), strict=True))
    return {"columns": columns, "rows": rows, "dicts": dicts}


def outline_tiles(tiles: TileOptions, pane: str, name: str, style: dict) -> VectorTiles:
    """Outlines of a coarser level (``streets``, ``communities``) from tiles, not interactive."""
    return VectorTiles(tile_url(tiles, pane), pane, name, pane, style)


def heat_cell_m(data: Any, most_cells: int = 30_000) -> float:
    """Cell size of the heat surface: 100 m, coarser when the areas' extent would give more
    than ``most_cells`` cells (a city at 100 m is 1.5 MB of heat points in the page)."""
    import math

    west, south, east, north = data.all_areas().total_bounds
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        return 100.0
    lat = math.radians((south + north) / 2)
    area_m2 = (east - west) * 111_320 * math.cos(lat) * (north - south) * 110_574
    return float(max(100, math.ceil(math.sqrt(max(area_m2, 0) / most_cells) / 10) * 10))


def _fills(codes: pd.Series, colours: list[str | None]) -> dict:
    """The compact ``fills`` of :class:`VectorTiles`: a palette and an index per code."""
    palette = sorted({c for c in colours if c})
    at = {c: i for i, c in enumerate(palette)}
    return {
        "palette": palette,
        "codes": {str(k): at[c] for k, c in zip(codes, colours, strict=True) if c},
    }


def micro_grid_tiles(
    tiles: TileOptions, name: str, style: dict, tooltip: dict[str, str], show: bool
) -> VectorTiles:
    """The micro-grids from tiles, with their code and name on hover."""
    return VectorTiles(
        tile_url(tiles, "micro_grids"),
        "micro_grids",
        name,
        "micro_grids",
        {**style, "fill": True},  # a transparent fill: hovering inside finds the micro-grid
        tooltip={k: v for k, v in tooltip.items() if k in ("code", "name")},
        show=show,
        min_zoom=MICRO_MIN_ZOOM,
    )


def _filled_grids(
    url: str, key: str, names: dict[str, str], opacity: float, fills: dict, show: bool = True
) -> VectorTiles:
    """Grids filled by code, no outline (choropleth, hot spots): layer ``key`` in its own pane."""
    style = {"stroke": False, "fill": True, "fillOpacity": opacity}
    return VectorTiles(url, "grids", names[key], key, style, fills=fills, show=show)


def grid_tile_layers(
    tiles: TileOptions,
    props: pd.DataFrame,
    tooltip: dict[str, str],
    names: dict[str, str],
    outline: dict,
    choropleth: list[str | None] | None = None,
    hot: list[str | None] | None = None,
    link: str | None = None,
) -> dict[str, VectorTiles]:
    """The grids, and the choropleth and hot spots when given, drawn from the grid tiles.

    Parameters
    ----------
    props : pandas.DataFrame
        ``code`` and the tooltip's columns, one row per grid: what the audience may
        see, decided by the page (the tiles carry boundaries only).
    names : dict
        Layer key (``grids``, ``choropleth``, ``hotspots``) → name in the layer control.
    choropleth, hot : list, optional
        Fill colour per row of ``props`` (None: not drawn).
    """
    url = tile_url(tiles, "grids")
    # the tiles carry code and name; staff are on each grid's page (the popup's link)
    tooltip = {k: v for k, v in tooltip.items() if k not in TABLE_LEFT_OUT}
    table = _table(props, [c for c in tooltip if c in props and c not in ("code", "name")])
    out: dict[str, VectorTiles] = {}
    if choropleth is not None:
        out["choropleth"] = _filled_grids(
            url, "choropleth", names, 0.75, _fills(props["code"], choropleth), show=False
        )
    if hot is not None:
        out["hotspots"] = _filled_grids(url, "hotspots", names, 0.7, _fills(props["code"], hot))
    out["grids"] = VectorTiles(
        url,
        "grids",
        names["grids"],
        "grids",
        {**outline, "fill": True},
        tooltip=tooltip,
        table=table,
        link=link,
    )
    return out
