"""The district map page (/map), and what the pages share (options, base map, rendering).

One grid's page (/map/grids/{code}) is in :mod:`app.maps.grid_page`.

Builders take a :class:`~app.services.map_data.MapData` (database or in-memory demo) and
return a complete HTML page; they never touch the database. How assets are
referenced (served URLs or inlined), which basemap is drawn and where links
point is a :class:`PageOptions`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import folium
import numpy as np
import pandas as pd
from branca.element import Figure

from app.maps import layers as ly
from app.maps.assets import AssetStore, finish, localize
from app.maps.basemap import PRESETS, Basemap
from app.maps.elements import GridmapAssets, LayerRegistry, Panel, SharedGeometries, js_json
from app.maps.geometry import display_geometries, lonlat_to_display
from app.maps.tiles import (
    TileOptions,
    VectorTiles,
    grid_tile_layers,
    heat_cell_m,
    micro_grid_tiles,
    outline_tiles,
    use_tiles,
)
from app.services.analysis import (
    MEASURES,
    Selection,
    cached,
    coverage,
    grid_stats,
    heat_points,
    incident_sample,
    prepare,
    staff_summary,
)
from app.services.map_data import MapData
from gis.errors import ValidationError
from gis.layers import KNOWN_THEMES

__all__ = [
    "KIND_NAMES",
    "grid_tooltip",
    "page_stats",
    "ROLE_NAMES",
    "PageOptions",
    "build_map_page",
    "district_map",
    "render_page",
]

ROLE_NAMES = {
    "grid_leader": "网格长",
    "grid_worker": "网格员",
    "micro_grid_worker": "微网格员",
    "dedicated_grid_leader": "专属网格长",
}
KIND_NAMES = {
    "comprehensive": "综合网格",
    "dedicated": "专属网格",
    "basic": "基础网格",
    "micro": "微网格",
}
_GRID_TOOLTIP = {
    "code": "网格编码 code",
    "name": "名称 name",
    "community": "社区 community",
    "staff": "网格员 staff",
    "households": "户数 households",
    "count": "事件 incidents",
    "rate": "每千人 per 1,000",
    "hot": "Gi*",
}


@dataclass(frozen=True)
class PageOptions:
    """How a page is assembled, apart from the data and the incident selection.

    Attributes
    ----------
    basemap : Basemap
        Tiles under the map (default none); geometries follow its datum.
    asset_prefix : str or None
        URL prefix of the served assets (``/static/vendor/``); None inlines them
        (standalone HTML).
    grid_url : str or None
        Link template to a grid's page, with ``{code}``; None for no links.
    map_url : str or None
        Link back to the district map from a grid page.
    simplify_m : float
        Display simplification of boundaries, metres.
    cluster_points : int
        Most incidents in the clustered layer (a seeded sample beyond).
    permutations : int
        Gi* permutations (0: normal approximation).
    incidents : bool
        Draw the incident-derived layers (points, heat, counts, rates, hot spots,
        incidents outside the grids). False is the public page: boundaries, codes,
        names and the published staff only.
    hot_spots : bool
        Draw Gi* (off for a caller scoped to an area: Gi* compares every grid with
        its neighbours, and the rest of the district is not the caller's to see).
    scope : str or None
        The area whose incidents the data holds (grids outside it show no numbers).
    staff : {"phones", "names", "roles", "none"}
        What of the staff the page shows (phones only to signed-in callers).
    tiles : TileOptions or None
        Where a served page finds the app's vector tiles: levels above their
        threshold are drawn from them (:mod:`app.maps.tiles`). None embeds every
        layer (a standalone page).
    """

    basemap: Basemap = field(default_factory=lambda: PRESETS["none"])
    asset_prefix: str | None = None
    grid_url: str | None = None
    map_url: str | None = None
    simplify_m: float = 1.0
    cluster_points: int = 5000
    permutations: int = 999
    incidents: bool = True
    hot_spots: bool = True
    scope: str | None = None
    staff: str = "phones"
    tiles: TileOptions | None = None


# -- shared pieces ---------------------------------------------------------------------
@lru_cache(maxsize=1)
def _category_names() -> dict[str, str]:
    from gis.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    names = dict(zip(taxonomy["code"], taxonomy["name_zh"], strict=True))
    names.update(zip(taxonomy["major_code"], taxonomy["major_name_zh"], strict=True))
    return names


def _shapes(data: MapData, level: str, options: PageOptions) -> list:
    """Display geometries of a level, computed once per data, datum and tolerance."""
    key = ("shapes", level, options.basemap.crs, options.simplify_m)
    return cached(
        data,
        key,
        lambda: display_geometries(data.level(level), options.simplify_m, options.basemap.crs),
    )


def _shared(data: MapData, shared: SharedGeometries, level: str, options: PageOptions) -> str:
    """The JS array of a whole level's display geometries (JSON text cached too)."""
    key = ("shapes_json", level, options.basemap.crs, options.simplify_m)
    text = cached(data, key, lambda: js_json(_shapes(data, level, options)))
    return shared.add(level, text)


def _base_map(
    data: MapData,
    bounds: tuple[float, float, float, float],
    options: PageOptions,
    title: str,
    padding_left: int = 8,
) -> folium.Map:
    west, south, east, north = bounds
    (lon0, lon1), (lat0, lat1) = lonlat_to_display(
        [west, east], [south, north], options.basemap.crs
    )
    m = folium.Map(
        location=[(lat0 + lat1) / 2, (lon0 + lon1) / 2],
        zoom_start=13,
        tiles=None,
        control_scale=True,
    )
    # folium passes max_zoom to its tile layer only; without tiles the map needs its own
    # (marker clusters refuse a map without one).
    m.options["max_zoom"] = options.basemap.max_zoom
    root = m.get_root()
    assert isinstance(root, Figure)
    root.title = html.escape(title)  # branca writes the title unescaped
    basemap = options.basemap
    if basemap.url:
        folium.TileLayer(
            tiles=basemap.url,
            attr=basemap.attribution or basemap.name,
            name="底图 basemap",
            max_zoom=basemap.max_zoom,
            subdomains=basemap.subdomains or "abc",
            overlay=False,
        ).add_to(m)
    # Before any layer, and not animated: layers are drawn once, at the final zoom (an
    # animated zoom right at load also leaves headless screenshots with stale panes).
    fit = folium.map.FitBounds(
        [[lat0, lon0], [lat1, lon1]],
        padding_top_left=(padding_left, 8),
        padding_bottom_right=(8, 8),
    )
    fit.options["animate"] = False
    fit.add_to(m)
    GridmapAssets().add_to(m)
    return m


def render_page(m: folium.Map, store: AssetStore, prefix: str | None) -> str:
    """The complete HTML page of ``m`` with local (served or inlined) assets."""
    root = m.get_root()
    localize(root, store, prefix)
    return finish(_compact_unicode(root.render()), store)


# jinja's tojson writes every CJK character as a 6-byte \\uXXXX escape; UTF-8 needs 3.
# A run of backslashes before "u" is an escape only when the run is odd.
_ESCAPE = re.compile(r"(\\+)u([0-9a-fA-F]{4})")
# Decoded: non-ASCII outside the surrogates; not U+2028/2029 (line ends to old JS engines).
_TEXT = ((0x00A0, 0x2027), (0x202A, 0xD7FF), (0xE000, 0xFFFD))


def _compact_unicode(text: str) -> str:
    def replace(match: re.Match) -> str:
        slashes, point = match.group(1), int(match.group(2), 16)
        if len(slashes) % 2 and any(lo <= point <= hi for lo, hi in _TEXT):
            return slashes[:-1] + chr(point)
        return match.group(0)

    return _ESCAPE.sub(replace, text)


def _names(data: MapData, level: str) -> dict[str, str]:
    frame = data.level(level)
    return dict(zip(frame["code"], frame["name"].fillna(""), strict=True))


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: Any, decimals: int = 0) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if not np.isfinite(number) else f"{number:,.{decimals}f}"


# -- the district map ------------------------------------------------------------------
def build_map_page(
    data: MapData,
    selection: Selection | None = None,
    measure: str = "count",
    options: PageOptions | None = None,
    store: AssetStore | None = None,
) -> str:
    """The district map: boundaries, choropleth, hot spots, coverage, incidents.

    Parameters
    ----------
    data : MapData
    selection : Selection, optional
        Incidents counted (default: all).
    measure : {"count", "rate_per_1000", "per_km2"}
        What the choropleth shows.
    options : PageOptions, optional
    store : AssetStore, optional
        Installed assets (default: ``var/assets``).

    Returns
    -------
    str
        The HTML page.

    Raises
    ------
    ValidationError
        For an unknown measure.
    AssetError
        If the front-end packages are not installed.
    """
    if measure not in MEASURES:
        raise ValidationError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    selection = selection or Selection()
    options = options or PageOptions()
    store = store or AssetStore.configured()
    return render_page(district_map(data, selection, measure, options), store, options.asset_prefix)


def district_map(
    data: MapData, selection: Selection, measure: str, options: PageOptions
) -> folium.Map:
    """The folium map behind :func:`build_map_page` (before assets are localized)."""
    _prepare(data, selection, options)
    stats = page_stats(data, selection, options)
    report = coverage(data)
    title = f"{place_name(data.level('district'))} 网格地图 grid map"
    bounds = tuple(data.all_areas().total_bounds)
    m = _base_map(data, bounds, options, title)  # type: ignore[arg-type]
    ly.add_panes(m)
    shared = SharedGeometries().add_to(m)  # before the layers that draw from it
    classes = ly.choropleth_classes(
        stats[measure].to_numpy(dtype=float) if options.incidents else np.array([])
    )
    layers = _district_layers(data, shared, stats, classes, measure, selection, report, options)
    for layer in layers.values():
        layer.add_to(m)
    if not isinstance(layers["grids"], VectorTiles):  # searching needs the features
        ly.grid_search(layers["grids"]).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    legend = (
        _legend_html(data, stats, classes, measure, selection, report, options)
        if options.incidents
        else _public_legend_html(data, report)
    )
    Panel(legend, "bottomleft", "gridmap-legend").add_to(m)
    meta = (
        _meta(data, stats, selection, measure, report)
        if options.incidents
        else _public_meta(data, report)
    )
    LayerRegistry(layers, meta).add_to(m)
    return m


def _prepare(data: MapData, selection: Selection, options: PageOptions) -> None:
    """Start the analyses that wait on the database (a city's) beside Gi*."""
    if not options.incidents:
        return
    prepare(
        data,
        [
            lambda: heat_points(data, selection, cell_m=heat_cell_m(data)),
            lambda: coverage(data),
            lambda: incident_sample(data, selection, options.cluster_points),
        ],
    )


def page_stats(data: MapData, selection: Selection, options: PageOptions) -> pd.DataFrame:
    """Per grid: code, name, households and — when the page shows incidents — counts,
    rates and Gi* (NaN for grids outside the caller's scope: nothing to show there)."""
    if not options.incidents:
        grids = data.level("grid")
        columns = [c for c in ("code", "name", "households") if c in grids]
        return pd.DataFrame(grids[columns]).reset_index(drop=True)
    stats = grid_stats(data, selection, options.permutations)
    if options.scope is None:
        return stats
    outside = ~stats["code"].astype(str).str.startswith(options.scope).to_numpy()
    stats = stats.copy()
    for column in ("count", "rate_per_1000", "per_km2", "z", "p"):
        if column in stats:
            stats.loc[outside, column] = np.nan
    return stats


def _public_legend_html(data: MapData, report) -> str:
    """The public legend: the district, its generation and the boundaries' defects."""
    counts = {k: v for k, v in report.counts.items() if v and k != "outside_incident"}
    parts = [
        f"<h4>{_esc(place_name(data.level('district')))} · "
        f"{_esc(data.generation.get('label'))}</h4>",
        "<div class='gridmap-meta'>网格信息公示 public grid information</div>",
        "<h5>覆盖 coverage</h5>",
        "<div class='gridmap-alarm'>"
        + _esc(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
        + "</div>"
        if counts
        else "<div>no gaps, overlaps or unstaffed grids ✓</div>",
        f"<div class='gridmap-row'>{ly.swatch(ly.ALARM)}gap, overlap, sliver, nesting</div>",
        f"<div class='gridmap-row'>{ly.swatch(ly.ALARM, 'line')}unstaffed grid</div>",
    ]
    return "".join(parts)


def _public_meta(data: MapData, report) -> dict:
    counts = {k: v for k, v in report.counts.items() if k != "outside_incident"}
    return {
        "generation": data.generation,
        "grids": int(len(data.level("grid"))),
        "defects": counts,
    }


def _district_layers(
    data, shared, stats, classes, measure, selection, report, options
) -> dict[str, Any]:
    grids_from_tiles = use_tiles(options.tiles, len(stats), options.basemap.crs)
    # grids drawn from tiles leave the staff to each grid's page (see tiles.TABLE_LEFT_OUT)
    grid_props = _grid_properties(data, stats, options, with_staff=not grids_from_tiles)
    links = f"gridmapGridLinks({_js_string(options.grid_url)})" if options.grid_url else None
    # the grids' shapes go into the page only when a layer draws them from it
    grid_js = "" if grids_from_tiles and not data.themes else _shared(data, shared, "grid", options)
    out: dict[str, Any] = {}
    if grids_from_tiles:
        out.update(_grid_tiles(stats, grid_props, classes, measure, options))
    if options.incidents and not grids_from_tiles:
        out["choropleth"] = ly.choropleth_layer(
            stats, grid_js, measure, classes, f"事件数 choropleth: {MEASURES[measure]}", False
        )
    if options.incidents and options.hot_spots and not grids_from_tiles:
        out["hotspots"] = ly.hotspot_layer(stats, grid_js, "热点 hot spots (Gi*)", True)
    if not grids_from_tiles:
        out["grids"] = ly.area_layer(
            grid_props,
            grid_js,
            f"网格 grids ({len(stats)})",
            ly.OUTLINES["grid"],
            "grids",
            grid_tooltip(grid_props),
            on_each_feature=links,
        )
    out["micro_grids"] = _district_micro_grids(data, shared, options)
    for level, pane, label in (
        ("community", "communities", "社区 communities"),
        ("street", "streets", "街道 streets"),
    ):
        frame = data.level(level)
        name = f"{label} ({len(frame)})"
        out[f"{level}_outlines"] = (
            # a city drawn from tiles: the coarser outlines too (half a megabyte less)
            outline_tiles(options.tiles, pane, name, ly.OUTLINES[level])
            if grids_from_tiles and options.tiles is not None
            else ly.outline_layer(
                frame["code"], _shared(data, shared, level, options), name, ly.OUTLINES[level], pane
            )
        )
    defects = report.defects
    if not options.incidents:  # the public page: boundaries' defects only
        defects = defects[defects["type"] != "outside_incident"]
    out["defects"] = ly.defect_layer(
        defects,
        options.simplify_m,
        options.basemap.crs,
        f"覆盖缺陷 coverage defects ({_polygon_defects(defects)})",
    )
    out.update(_theme_layers(data, shared, grid_js, options))
    if options.incidents:
        out.update(_incident_layers(data, defects, selection, options))
    return out


def _district_micro_grids(data: MapData, shared, options: PageOptions) -> Any:
    """The district's micro-grids: from tiles on a served page (hidden until asked for)."""
    micro = data.level("micro_grid")
    if use_tiles(options.tiles, len(micro), options.basemap.crs, always=True):
        assert options.tiles is not None
        return micro_grid_tiles(
            options.tiles,
            f"微网格 micro-grids ({len(micro):,})",
            ly.OUTLINES["micro_grid"],
            {"code": "微网格 micro-grid", "name": "名称 name"},
            show=False,
        )
    return _micro_layer(data, _shared(data, shared, "micro_grid", options), micro, show=False)


def _grid_tiles(stats, grid_props, classes, measure: str, options: PageOptions) -> dict[str, Any]:
    """Grids, choropleth and hot spots from the grid tiles; the page keeps their numbers."""
    assert options.tiles is not None
    choropleth = hot = None
    if options.incidents:
        values = pd.to_numeric(stats[measure], errors="coerce").to_numpy(dtype=float)
        choropleth = [classes.colour(v) if np.isfinite(v) else "#cccccc" for v in values]
    if options.incidents and options.hot_spots:
        hot = [ly.HOT_COLOURS[int(b)] if int(b) else None for b in stats["bin"]]
    return grid_tile_layers(
        options.tiles,
        grid_props,
        grid_tooltip(grid_props),
        {
            "grids": f"网格 grids ({len(stats)})",
            "choropleth": f"事件数 choropleth: {MEASURES[measure]}",
            "hotspots": "热点 hot spots (Gi*)",
        },
        ly.OUTLINES["grid"],
        choropleth,
        hot,
        options.grid_url,
    )


def _incident_layers(data: MapData, defects, selection: Selection, options: PageOptions) -> dict:
    """Incidents outside every grid, the clustered points and the heat surface."""
    out: dict[str, Any] = {}
    outside = int((defects["type"] == "outside_incident").sum())
    out["outside"] = ly.outside_layer(
        defects, options.basemap.crs, f"网格外事件 incidents outside grids ({outside})"
    )
    # every incident of the selection, or at city scale a sample drawn by the database
    chosen, selected = incident_sample(data, selection, options.cluster_points)
    sample = min(len(chosen), options.cluster_points)
    label = f"{sample:,}" if sample == selected else f"{sample:,} of {selected:,} sampled"
    out["clusters"] = ly.cluster_layer(
        chosen,
        _category_names(),
        options.basemap.crs,
        options.cluster_points,
        f"事件聚类 incidents ({label})",
    )
    out["heat"] = ly.heat_layer(
        heat_points(data, selection, cell_m=heat_cell_m(data)),
        options.basemap.crs,
        "热力 heat (kernel density)",
    )
    return out


_UNIT_TOOLTIP = {"theme": "专题 theme", "code": "单元编码 unit", "name": "名称 name"}
_SPLIT_TOOLTIP = {
    "code": "网格编码 grid",
    "name": "网格名称 grid name",
    "unit": "主要单元 main unit",
    "split_into": "分割为 split into",
}


def _theme_layers(data: MapData, shared, grid_js: str, options: PageOptions) -> dict[str, Any]:
    """Per thematic layer: its units' outlines, and the grids its boundaries split."""
    out: dict[str, Any] = {}
    grid_position = {code: i for i, code in enumerate(data.level("grid")["code"])}
    for theme, result in data.themes.items():
        label = KNOWN_THEMES.get(theme, theme)
        units = result.units
        shapes = _theme_shapes(data, theme, units, options)
        props = pd.DataFrame({"theme": label, "code": units["code"], "name": units["name"]})
        out[f"theme_{theme}"] = ly.area_layer(
            props,
            shared.add(f"theme-{theme}", js_json(shapes)),
            f"{label} ({len(units)})",
            ly.theme_style(theme),
            "themes",
            _UNIT_TOOLTIP,
            show=False,
        )
        split = result.crosswalk.split.sort_values("grid_code")
        names = dict(zip(units["code"], units["name"], strict=True))
        split_props = pd.DataFrame(
            {
                "code": split["grid_code"].to_numpy(),
                "name": split["grid_name"].to_numpy(),
                "unit": [f"{c} {names.get(c) or ''}".strip() for c in split["unit_code"]],
                "split_into": split["split_into"].to_numpy(),
            }
        )
        out[f"theme_{theme}_split"] = ly.area_layer(
            split_props,
            grid_js,
            f"{label}: 分割网格 split grids ({len(split)})",
            ly.SPLIT_GRID,
            "theme_split",
            _SPLIT_TOOLTIP,
            show=False,
            pick=[grid_position[c] for c in split["grid_code"]],
        )
    return out


def _theme_shapes(data: MapData, theme: str, units, options: PageOptions) -> list:
    """Display geometries of a theme's units, computed once per data, datum and tolerance."""
    key = ("theme_shapes", theme, options.basemap.crs, options.simplify_m)
    return cached(
        data, key, lambda: display_geometries(units, options.simplify_m, options.basemap.crs)
    )


def _polygon_defects(defects: pd.DataFrame) -> int:
    return int((defects["type"] != "outside_incident").sum())


def _micro_layer(
    data: MapData,
    geometries_js: str,
    micro: pd.DataFrame,
    show: bool,
    pick: list[int] | None = None,
    with_staff: bool = False,
) -> Any:
    props = pd.DataFrame(
        {"code": micro["code"], "name": micro["name"], "households": micro.get("households")}
    )
    tooltip = {"code": "微网格 micro-grid", "name": "名称 name", "households": "户数 households"}
    if with_staff:  # one grid's micro-grids: with their building heads
        staff = staff_summary(data.staff, micro["code"], ROLE_NAMES)
        props["staff"] = micro["code"].map(staff).fillna("—").to_numpy()
        tooltip["staff"] = "微网格员 staff"
    return ly.area_layer(
        props,
        geometries_js,
        f"微网格 micro-grids ({len(micro):,})",
        ly.OUTLINES["micro_grid"],
        "micro_grids",
        tooltip,
        show=show,
        pick=pick,
    )


def _grid_properties(
    data: MapData,
    stats: pd.DataFrame,
    options: PageOptions | None = None,
    with_staff: bool = True,
) -> pd.DataFrame:
    """Tooltip properties of the grids: names, staff (unless ``with_staff`` is False),
    households and, when the page shows incidents, counts and the Gi* class (only the
    columns the audience may see)."""
    options = options or PageOptions()
    grids = data.level("grid")
    community = _names(data, "community")
    props = pd.DataFrame(
        {
            "code": stats["code"],
            "name": stats["name"],
            "community": grids["parent_code"].map(community).astype(object).fillna("").to_numpy(),
        }
    )
    if options.staff != "none" and with_staff:
        props["staff"] = _staff_texts(data, options.staff)
    props["households"] = stats.get("households")
    if options.incidents:
        props["count"] = stats["count"]
        props["rate"] = stats["rate_per_1000"].round(2)
    if options.incidents and options.hot_spots:
        props["hot"] = [
            ly.HOT_LABELS[int(b)] + f" (z = {z:.2f})"
            for b, z in zip(stats["bin"], stats["z"], strict=True)
        ]
    return props


def grid_tooltip(props: pd.DataFrame) -> dict[str, str]:
    """The grid tooltip's fields that ``props`` has."""
    return {k: v for k, v in _GRID_TOOLTIP.items() if k in props}


def _staff_texts(data: MapData, shown: str) -> list[str]:
    """Per grid: "网格长 张三、网格员 李四 + 3 微网格员" (roles only with ``shown="roles"``)."""
    grids = data.level("grid")
    if shown == "roles":
        own = cached(data, ("grid_roles",), lambda: _role_summary(data.staff, grids["code"]))
    else:
        own = cached(
            data, ("grid_staff",), lambda: staff_summary(data.staff, grids["code"], ROLE_NAMES)
        )
    heads = cached(data, ("micro_staff_per_grid",), lambda: _micro_staff_counts(data))
    return [
        own.get(c, "无 none").strip()
        + (f" + {heads.get(c, 0)} 微网格员" if heads.get(c, 0) else "")
        for c in grids["code"]
    ]


def _role_summary(staff: pd.DataFrame, codes: pd.Series) -> dict[str, str]:
    """``code → "网格长、网格员"``: the roles of each area's staff, without names."""
    wanted = staff[staff["area_code"].isin(set(codes))]
    labels = wanted["role"].map(ROLE_NAMES).fillna(wanted["role"])
    return labels.groupby(wanted["area_code"]).agg(lambda r: "、".join(dict.fromkeys(r))).to_dict()


def _micro_staff_counts(data: MapData) -> dict[str, int]:
    """Grid code → number of staff working on its micro-grids (building heads)."""
    micro = data.level("micro_grid")
    parent = dict(zip(micro["code"], micro["parent_code"], strict=True))
    return data.staff["area_code"].map(parent).dropna().value_counts().to_dict()


def place_name(districts: pd.DataFrame) -> str:
    """What a page is titled by: the district, or for several the city and how many.

    A city's districts are answered for by "<city><district>人民政府": the city's name is
    what their ``responsible`` has before the district's own name ("铜陵市 6 个区").
    """
    if len(districts) <= 1:
        return _first(districts["name"], "gridmap") if "name" in districts else "gridmap"
    cities = set()
    if {"name", "responsible"} <= set(districts.columns):
        for name, responsible in zip(districts["name"], districts["responsible"], strict=True):
            head, found, _ = str(responsible).partition(str(name))
            cities.add(head if found and head else None)
    city = cities.pop() if len(cities) == 1 else None
    return f"{city or ''} {len(districts)} 个区".strip()


def _first(values: pd.Series, default: str) -> str:
    return str(values.iloc[0]) if len(values) and pd.notna(values.iloc[0]) else default


def _js_string(text: str | None) -> str:
    import json

    return json.dumps(text)


def _legend_html(data, stats, classes, measure, selection, report, options=None) -> str:
    options = options or PageOptions()
    decimals = 0 if measure == "count" else 2
    parts = [
        f"<h4>{_esc(place_name(data.level('district')))} · "
        f"{_esc(data.generation.get('label'))}</h4>",
        f"<div class='gridmap-meta'>{_esc(selection.describe())}<br>"
        f"{stats.attrs.get('selected', 0):,} incidents selected, "
        f"{stats.attrs.get('unassigned', 0):,} outside every grid</div>",
    ]
    if options.hot_spots:
        parts.append("<h5>热点 Gi* hot spots</h5>")
        parts += [
            f"<div class='gridmap-row'>{ly.swatch(ly.HOT_COLOURS[b])}{_esc(ly.HOT_LABELS[b])}"
            f" <span class='gridmap-meta'>({int((stats['bin'] == b).sum())})</span></div>"
            for b in (3, 2, 1, -1, -2, -3)
        ]
    parts.append(f"<h5>{_esc(MEASURES[measure])}</h5>")
    parts += [
        f"<div class='gridmap-row'>{ly.swatch(c)}{_esc(label)}</div>"
        for c, label in zip(classes.colours, classes.labels(decimals), strict=True)
    ]
    parts.append("<h5>覆盖 coverage</h5>")
    counts = {k: v for k, v in report.counts.items() if v}
    if counts:
        parts.append(
            "<div class='gridmap-alarm'>"
            + _esc(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
            + "</div>"
        )
    else:
        parts.append("<div>no gaps, overlaps or unstaffed grids ✓</div>")
    parts += [
        f"<div class='gridmap-row'>{ly.swatch(ly.ALARM)}gap, overlap, sliver, nesting</div>",
        f"<div class='gridmap-row'>{ly.swatch(ly.ALARM, 'line')}unstaffed grid</div>",
        f"<div class='gridmap-row'>{ly.swatch(ly.ALARM, 'dot')}incident outside grids</div>",
    ]
    return "".join(parts) + _category_legend()


def _category_legend() -> str:
    """Colours of the incident dots: the four major classes of the taxonomy."""
    names = _category_names()
    rows = [
        f"<div class='gridmap-row'>{ly.swatch(colour, 'dot')}{_esc(code)} "
        f"{_esc(names.get(code, ''))}</div>"
        for code, colour in ly.MAJOR_COLOURS.items()
    ]
    return "<h5>事件类别 incident classes</h5>" + "".join(rows)


def _meta(data, stats, selection, measure, report) -> dict:
    return {
        "generation": data.generation,
        "grids": int(len(stats)),
        "selected": int(stats.attrs.get("selected", 0)),
        "measure": measure,
        "selection": selection.describe(),
        "defects": report.counts,
    }
