"""The map pages: the district map (/map) and one grid's map (/map/grids/{code}).

Builders take a :class:`~app.maps.data.MapData` (database or in-memory demo) and
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

from app.db.repo import NotFoundError
from app.maps import layers as ly
from app.maps.analysis import (
    MEASURES,
    Selection,
    cached,
    coverage,
    grid_stats,
    heat_points,
    select_incidents,
    staff_summary,
)
from app.maps.assets import AssetStore, finish, localize
from app.maps.basemap import PRESETS, Basemap
from app.maps.data import MapData
from app.maps.elements import GridmapAssets, LayerRegistry, Panel, SharedGeometries, js_json
from app.maps.geometry import display_geometries, lonlat_to_display
from gis.errors import ValidationError

__all__ = ["KIND_NAMES", "ROLE_NAMES", "PageOptions", "build_grid_page", "build_map_page",
           "render_page"]

ROLE_NAMES = {"grid_leader": "网格长", "grid_worker": "网格员", "micro_grid_worker": "微网格员",
              "dedicated_grid_leader": "专属网格长"}
KIND_NAMES = {"comprehensive": "综合网格", "dedicated": "专属网格", "basic": "基础网格",
              "micro": "微网格"}
_GRID_TOOLTIP = {"code": "网格编码 code", "name": "名称 name", "community": "社区 community",
                 "staff": "网格员 staff", "households": "户数 households",
                 "count": "事件 incidents", "rate": "每千人 per 1,000", "hot": "Gi*"}


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
    """

    basemap: Basemap = field(default_factory=lambda: PRESETS["none"])
    asset_prefix: str | None = None
    grid_url: str | None = None
    map_url: str | None = None
    simplify_m: float = 1.0
    cluster_points: int = 5000
    permutations: int = 999


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
    return cached(data, key, lambda: display_geometries(data.level(level), options.simplify_m,
                                                        options.basemap.crs))


def _shared(data: MapData, shared: SharedGeometries, level: str, options: PageOptions) -> str:
    """The JS array of a whole level's display geometries (JSON text cached too)."""
    key = ("shapes_json", level, options.basemap.crs, options.simplify_m)
    text = cached(data, key, lambda: js_json(_shapes(data, level, options)))
    return shared.add(level, text)


def _base_map(data: MapData, bounds: tuple[float, float, float, float], options: PageOptions,
              title: str) -> folium.Map:
    west, south, east, north = bounds
    (lon0, lon1), (lat0, lat1) = lonlat_to_display([west, east], [south, north],
                                                   options.basemap.crs)
    m = folium.Map(location=[(lat0 + lat1) / 2, (lon0 + lon1) / 2], zoom_start=13, tiles=None,
                   control_scale=True, max_zoom=options.basemap.max_zoom)
    m.get_root().title = html.escape(title)
    basemap = options.basemap
    if basemap.url:
        folium.TileLayer(tiles=basemap.url, attr=basemap.attribution or basemap.name,
                         name="底图 basemap", max_zoom=basemap.max_zoom,
                         subdomains=basemap.subdomains or "abc", overlay=False).add_to(m)
    m.fit_bounds([[lat0, lon0], [lat1, lon1]])
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
_CJK = ((0x3000, 0x30FF), (0x3400, 0x9FFF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF))


def _compact_unicode(text: str) -> str:
    def replace(match: re.Match) -> str:
        slashes, point = match.group(1), int(match.group(2), 16)
        if len(slashes) % 2 and any(lo <= point <= hi for lo, hi in _CJK):
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
def build_map_page(data: MapData, selection: Selection | None = None, measure: str = "count",
                   options: PageOptions | None = None, store: AssetStore | None = None) -> str:
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
    store = store or _default_store()
    return render_page(district_map(data, selection, measure, options), store,
                       options.asset_prefix)


def district_map(data: MapData, selection: Selection, measure: str, options: PageOptions
                 ) -> folium.Map:
    """The folium map behind :func:`build_map_page` (before assets are localized)."""
    stats = grid_stats(data, selection, options.permutations)
    report = coverage(data)
    district = data.level("district")
    title = f"{_first(district['name'], 'gridmap')} 网格地图 grid map"
    bounds = tuple(data.all_areas().total_bounds)
    m = _base_map(data, bounds, options, title)  # type: ignore[arg-type]
    ly.add_panes(m)
    shared = SharedGeometries().add_to(m)  # before the layers that draw from it
    classes = ly.choropleth_classes(stats[measure].to_numpy(dtype=float))
    layers = _district_layers(data, shared, stats, classes, measure, selection, report,
                              options)
    for layer in layers.values():
        layer.add_to(m)
    ly.grid_search(layers["grids"]).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    Panel(_legend_html(data, stats, classes, measure, selection, report), "bottomleft",
          "gridmap-legend").add_to(m)
    LayerRegistry(layers, _meta(data, stats, selection, measure, report)).add_to(m)
    return m


def _district_layers(data, shared, stats, classes, measure, selection, report, options
                     ) -> dict[str, Any]:
    grid_props = _grid_properties(data, stats)
    links = f"gridmapGridLinks({_js_string(options.grid_url)})" if options.grid_url else None
    chosen = select_incidents(data, selection)
    grid_js = _shared(data, shared, "grid", options)
    out: dict[str, Any] = {
        "choropleth": ly.choropleth_layer(stats, grid_js, measure, classes,
                                          f"事件数 choropleth: {MEASURES[measure]}", False),
        "hotspots": ly.hotspot_layer(stats, grid_js, "热点 hot spots (Gi*)", True),
        "grids": ly.area_layer(grid_props, grid_js, f"网格 grids ({len(stats)})",
                               ly.OUTLINES["grid"], "grids", _GRID_TOOLTIP,
                               on_each_feature=links),
        "micro_grids": _micro_layer(data, _shared(data, shared, "micro_grid", options),
                                    data.level("micro_grid"), show=False),
    }
    for level, label in (("community", "社区 communities"), ("street", "街道 streets")):
        frame = data.level(level)
        out[f"{level}_outlines"] = ly.outline_layer(
            frame["code"], _shared(data, shared, level, options), f"{label} ({len(frame)})",
            ly.OUTLINES[level], f"{level}s")
    defects = report.defects
    out["defects"] = ly.defect_layer(defects, options.simplify_m, options.basemap.crs,
                                     f"覆盖缺陷 coverage defects ({_polygon_defects(defects)})")
    outside = int((defects["type"] == "outside_incident").sum())
    out["outside"] = ly.outside_layer(defects, options.basemap.crs,
                                      f"网格外事件 incidents outside grids ({outside})")
    sample = min(len(chosen), options.cluster_points)
    label = f"{sample:,}" if sample == len(chosen) else f"{sample:,} of {len(chosen):,} sampled"
    out["clusters"] = ly.cluster_layer(chosen, _category_names(), options.basemap.crs,
                                       options.cluster_points, f"事件聚类 incidents ({label})")
    out["heat"] = ly.heat_layer(heat_points(data, selection), options.basemap.crs,
                                "热力 heat (kernel density)")
    return out


def _polygon_defects(defects: pd.DataFrame) -> int:
    return int((defects["type"] != "outside_incident").sum())


def _micro_layer(data: MapData, geometries_js: str, micro: pd.DataFrame, show: bool,
                 pick: list[int] | None = None, with_staff: bool = False) -> Any:
    props = pd.DataFrame({"code": micro["code"], "name": micro["name"],
                          "households": micro.get("households")})
    tooltip = {"code": "微网格 micro-grid", "name": "名称 name", "households": "户数 households"}
    if with_staff:  # one grid's micro-grids: with their building heads
        staff = staff_summary(data.staff, micro["code"], ROLE_NAMES)
        props["staff"] = micro["code"].map(staff).fillna("—").to_numpy()
        tooltip["staff"] = "微网格员 staff"
    return ly.area_layer(props, geometries_js, f"微网格 micro-grids ({len(micro):,})",
                         ly.OUTLINES["micro_grid"], "micro_grids", tooltip, show=show,
                         pick=pick)


def _grid_properties(data: MapData, stats: pd.DataFrame) -> pd.DataFrame:
    """Tooltip properties of the grids: names, staff, households, counts, Gi* class."""
    grids = data.level("grid")
    own = cached(data, ("grid_staff",), lambda: staff_summary(
        data.staff, grids["code"], ROLE_NAMES))
    heads = cached(data, ("micro_staff_per_grid",), lambda: _micro_staff_counts(data))
    community = _names(data, "community")
    staff_text = [own.get(c, "无 none") + (f" + {heads.get(c, 0)} 微网格员"
                                           if heads.get(c, 0) else "") for c in grids["code"]]
    return pd.DataFrame({
        "code": stats["code"], "name": stats["name"],
        "community": grids["parent_code"].map(community).fillna("").to_numpy(),
        "staff": staff_text, "households": stats.get("households"),
        "count": stats["count"], "rate": stats["rate_per_1000"].round(2),
        "hot": [ly.HOT_LABELS[int(b)] + f" (z = {z:.2f})"
                for b, z in zip(stats["bin"], stats["z"], strict=True)]})


def _micro_staff_counts(data: MapData) -> dict[str, int]:
    """Grid code → number of staff working on its micro-grids (building heads)."""
    micro = data.level("micro_grid")
    parent = dict(zip(micro["code"], micro["parent_code"], strict=True))
    return data.staff["area_code"].map(parent).dropna().value_counts().to_dict()


def _first(values: pd.Series, default: str) -> str:
    return str(values.iloc[0]) if len(values) and pd.notna(values.iloc[0]) else default


def _js_string(text: str | None) -> str:
    import json

    return json.dumps(text)


def _legend_html(data, stats, classes, measure, selection, report) -> str:
    decimals = 0 if measure == "count" else 2
    parts = [f"<h4>{_esc(_first(data.level('district')['name'], 'gridmap'))} · "
             f"{_esc(data.generation.get('label'))}</h4>",
             f"<div class='gridmap-meta'>{_esc(selection.describe())}<br>"
             f"{stats.attrs.get('selected', 0):,} incidents selected, "
             f"{stats.attrs.get('unassigned', 0):,} outside every grid</div>",
             "<h5>热点 Gi* hot spots</h5>"]
    parts += [f"<div class='gridmap-row'>{ly.swatch(ly.HOT_COLOURS[b])}{_esc(ly.HOT_LABELS[b])}"
              f" <span class='gridmap-meta'>({int((stats['bin'] == b).sum())})</span></div>"
              for b in (3, 2, 1, -1, -2, -3)]
    parts.append(f"<h5>{_esc(MEASURES[measure])}</h5>")
    parts += [f"<div class='gridmap-row'>{ly.swatch(c)}{_esc(label)}</div>"
              for c, label in zip(classes.colours, classes.labels(decimals), strict=True)]
    parts.append("<h5>覆盖 coverage</h5>")
    counts = {k: v for k, v in report.counts.items() if v}
    if counts:
        parts.append("<div class='gridmap-alarm'>" + _esc(", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in counts.items())) + "</div>")
    else:
        parts.append("<div>no gaps, overlaps or unstaffed grids ✓</div>")
    parts += [f"<div class='gridmap-row'>{ly.swatch(ly.ALARM)}gap, overlap, sliver, nesting</div>",
              f"<div class='gridmap-row'>{ly.swatch(ly.ALARM, 'line')}unstaffed grid</div>",
              f"<div class='gridmap-row'>{ly.swatch(ly.ALARM, 'dot')}incident outside grids</div>"]
    return "".join(parts)


def _meta(data, stats, selection, measure, report) -> dict:
    return {"generation": data.generation, "grids": int(len(stats)),
            "selected": int(stats.attrs.get("selected", 0)), "measure": measure,
            "selection": selection.describe(), "defects": report.counts}


def _default_store() -> AssetStore:
    from app.maps.settings import MapSettings

    return AssetStore(MapSettings().asset_dir)


# -- one grid --------------------------------------------------------------------------
def build_grid_page(data: MapData, code: str, selection: Selection | None = None,
                    options: PageOptions | None = None, store: AssetStore | None = None) -> str:
    """One grid: its micro-grids, incidents, staff and numbers, its neighbours around it.

    Raises
    ------
    NotFoundError
        If ``code`` is not a grid of the data's generation.
    """
    selection = selection or Selection()
    options = options or PageOptions()
    store = store or _default_store()
    return render_page(grid_map(data, code, selection, options), store, options.asset_prefix)


def grid_map(data: MapData, code: str, selection: Selection, options: PageOptions
             ) -> folium.Map:
    """The folium map behind :func:`build_grid_page`."""
    grids = data.level("grid")
    where = np.flatnonzero(grids["code"].to_numpy() == code)
    if not len(where):
        raise NotFoundError(f"no grid {code!r} in generation {data.generation.get('label')!r}")
    row = grids.iloc[int(where[0])]
    stats = grid_stats(data, selection, options.permutations)
    m = _base_map(data, tuple(row.geometry.bounds), options,  # type: ignore[arg-type]
                  f"{row['name']} {code}")
    ly.add_panes(m)
    shared = SharedGeometries().add_to(m)
    layers = _grid_layers(data, shared, code, row, stats, selection, options)
    for layer in layers.values():
        layer.add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    Panel(_grid_info_html(data, row, stats, selection, options), "bottomleft",
          "gridmap-info").add_to(m)
    LayerRegistry(layers, {"grid": code, "generation": data.generation,
                           "selection": selection.describe()}).add_to(m)
    return m


def _grid_layers(data, shared, code, row, stats, selection, options) -> dict[str, Any]:
    grids = data.level("grid")
    shapes = _shapes(data, "grid", options)
    near = np.sort(grids.sindex.query(row.geometry.buffer(0.002), predicate="intersects"))
    props = _grid_properties(data, stats).iloc[near]
    links = f"gridmapGridLinks({_js_string(options.grid_url)})" if options.grid_url else None
    near_js = shared.add("grids_near", js_json([shapes[i] for i in near]))
    micro = data.level("micro_grid")
    inside = np.flatnonzero(micro["parent_code"].to_numpy() == code)
    micro_shapes = _shapes(data, "micro_grid", options)
    micro_js = shared.add("micro_grids", js_json([micro_shapes[i] for i in inside]))
    chosen = select_incidents(data, selection)
    chosen = chosen[chosen["grid_code"] == code]
    focus = int(np.flatnonzero(props["code"].to_numpy() == code)[0])
    out: dict[str, Any] = {
        "grids": ly.area_layer(props, near_js, "邻近网格 nearby grids", ly.OUTLINES["grid"],
                               "grids", _GRID_TOOLTIP, on_each_feature=links),
        "micro_grids": _micro_layer(data, micro_js, micro.iloc[inside], True, with_staff=True),
        "grid": ly.outline_layer([code], near_js, f"网格 grid {code}",
                                 {"color": "#000000", "weight": 4, "fill": False}, "focus",
                                 pick=[focus]),
        "incidents": ly.incident_points(chosen, _category_names(), options.basemap.crs,
                                        f"事件 incidents ({len(chosen):,})"),
    }
    report = coverage(data)
    box = row.geometry.buffer(0.002)
    defects = report.defects[report.defects.intersects(box)]
    if len(defects):
        out["defects"] = ly.defect_layer(defects, options.simplify_m, options.basemap.crs,
                                         f"覆盖缺陷 coverage defects ({len(defects)})")
    return out


def _grid_info_html(data, row, stats, selection, options) -> str:
    code = row["code"]
    mine = stats[stats["code"] == code].iloc[0]
    community = data.level("community").set_index("code")
    parent = row["parent_code"]
    street_code = community["parent_code"].get(parent) if parent in community.index else None
    staff = data.staff[data.staff["area_code"] == code]
    micro = data.level("micro_grid")
    n_micro = int((micro["parent_code"] == code).sum()) if len(micro) else 0
    rows = [("编码 code", f"<span class='gridmap-code'>{_esc(code)}</span>"),
            ("类型 kind", _esc(KIND_NAMES.get(row.get("kind"), row.get("kind")))),
            ("社区 community", _esc(community["name"].get(parent, parent))),
            ("街道 street", _esc(_names(data, "street").get(street_code, street_code))),
            ("户数 households", _number(row.get("households"))),
            ("人口 population", _number(row.get("population"))),
            ("责任 responsible", _esc(row.get("responsible"))),
            ("微网格 micro-grids", str(n_micro))]
    rows += [(_esc(ROLE_NAMES.get(s.role, s.role)), f"{_esc(s.name)} {_esc(s.phone)}")
             for s in staff.itertuples()]
    if staff.empty:
        rows.append(("网格员 staff", "<span class='gridmap-alarm'>none (unstaffed)</span>"))
    rows += [("事件 incidents", _number(mine["count"])),
             ("每千人 per 1,000", _number(mine["rate_per_1000"], 2)),
             ("每平方公里 per km²", _number(mine["per_km2"], 1)),
             ("Gi*", f"{_esc(ly.HOT_LABELS[int(mine['bin'])])}, z = {mine['z']:.2f}, "
                     f"p = {mine['p']:.3f}")]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    back = (f"<div><a href='{_esc(options.map_url)}'>← district map</a></div>"
            if options.map_url else "")
    return (f"<h4>{_esc(row['name'])}</h4><div class='gridmap-meta'>"
            f"{_esc(selection.describe())}</div><table>{table}</table>{back}")
