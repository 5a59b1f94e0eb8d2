"""One grid's page (/map/grids/{code}): its micro-grids, incidents, staff and numbers.

Zoomed on the grid, with the grids around it for context (their tooltips and links
as on the district map), the grid's micro-grids with their building heads, every
incident of the selection in it, coverage defects nearby, and a panel with the grid's
record: codes, kind, community and street, households, population, responsible
party, staff, counts, rates and its Gi* class.
"""

from __future__ import annotations

from typing import Any

import folium
import numpy as np

from app.errors import NotFoundError
from app.maps import layers as ly
from app.maps.assets import AssetStore
from app.maps.elements import LayerRegistry, Panel, SharedGeometries, js_json
from app.maps.page import (
    KIND_NAMES,
    ROLE_NAMES,
    PageOptions,
    _base_map,
    _category_legend,
    _category_names,
    _esc,
    _grid_properties,
    _js_string,
    _micro_layer,
    _names,
    _number,
    _shapes,
    grid_tooltip,
    page_stats,
    render_page,
)
from app.services.analysis import Selection, coverage, select_incidents
from app.services.map_data import MapData
from gis.layers import KNOWN_THEMES

__all__ = ["build_grid_page", "grid_map"]


def build_grid_page(
    data: MapData,
    code: str,
    selection: Selection | None = None,
    options: PageOptions | None = None,
    store: AssetStore | None = None,
) -> str:
    """One grid: its micro-grids, incidents, staff and numbers, its neighbours around it.

    Raises
    ------
    NotFoundError
        If ``code`` is not a grid of the data's generation.
    """
    selection = selection or Selection()
    options = options or PageOptions()
    store = store or AssetStore.configured()
    return render_page(grid_map(data, code, selection, options), store, options.asset_prefix)


def grid_map(data: MapData, code: str, selection: Selection, options: PageOptions) -> folium.Map:
    """The folium map behind :func:`build_grid_page`."""
    grids = data.level("grid")
    where = np.flatnonzero(grids["code"].to_numpy() == code)
    if not len(where):
        raise NotFoundError(f"no grid {code!r} in generation {data.generation.get('label')!r}")
    row = grids.iloc[int(where[0])]
    stats = page_stats(data, selection, options)
    m = _base_map(
        data,
        tuple(row.geometry.bounds),
        options,  # type: ignore[arg-type]
        f"{row['name']} {code}",
        padding_left=340,
    )  # clear of the info panel
    ly.add_panes(m)
    shared = SharedGeometries().add_to(m)
    layers = _grid_layers(data, shared, code, row, stats, selection, options)
    for layer in layers.values():
        layer.add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    Panel(
        _grid_info_html(data, row, stats, selection, options), "bottomleft", "gridmap-info"
    ).add_to(m)
    meta = {"grid": code, "generation": data.generation}
    if options.incidents:
        meta["selection"] = selection.describe()
    LayerRegistry(layers, meta).add_to(m)
    return m


def _grid_layers(data, shared, code, row, stats, selection, options) -> dict[str, Any]:
    grids = data.level("grid")
    shapes = _shapes(data, "grid", options)
    near = np.sort(grids.sindex.query(row.geometry.buffer(0.002), predicate="intersects"))
    props = _grid_properties(data, stats, options).iloc[near]
    links = f"gridmapGridLinks({_js_string(options.grid_url)})" if options.grid_url else None
    near_js = shared.add("grids_near", js_json([shapes[i] for i in near]))
    micro = data.level("micro_grid")
    inside = np.flatnonzero(micro["parent_code"].to_numpy() == code)
    micro_shapes = _shapes(data, "micro_grid", options)
    micro_js = shared.add("micro_grids", js_json([micro_shapes[i] for i in inside]))
    focus = int(np.flatnonzero(props["code"].to_numpy() == code)[0])
    out: dict[str, Any] = {
        "grids": ly.area_layer(
            props,
            near_js,
            "邻近网格 nearby grids",
            ly.OUTLINES["grid"],
            "grids",
            grid_tooltip(props),
            on_each_feature=links,
        ),
        "micro_grids": _micro_layer(
            data,
            micro_js,
            micro.iloc[inside],
            True,
            with_staff=options.staff in ("names", "phones"),
        ),
        "grid": ly.outline_layer(
            [code],
            near_js,
            f"网格 grid {code}",
            {"color": "#000000", "weight": 4, "fill": False},
            "focus",
            pick=[focus],
        ),
    }
    if options.incidents:
        chosen = select_incidents(data, selection)
        chosen = chosen[chosen["grid_code"] == code]
        out["incidents"] = ly.incident_points(
            chosen, _category_names(), options.basemap.crs, f"事件 incidents ({len(chosen):,})"
        )
    report = coverage(data)
    box = row.geometry.buffer(0.002)
    defects = report.defects[report.defects.intersects(box)]
    if not options.incidents:  # the public page: boundaries' defects only
        defects = defects[defects["type"] != "outside_incident"]
    if len(defects):
        out["defects"] = ly.defect_layer(
            defects,
            options.simplify_m,
            options.basemap.crs,
            f"覆盖缺陷 coverage defects ({len(defects)})",
        )
    return out


def _theme_rows(data: MapData, code: str) -> list[tuple[str, str]]:
    """One row per thematic layer (多格合一): the units sharing the grid, largest share first."""
    rows = []
    for theme, result in data.themes.items():
        pairs = result.crosswalk.units_of_grid(code)
        pairs = pairs[pairs["share_of_grid"] >= 0.0005]  # not the slivers of separate drawings
        units = [
            f"{_esc(p.unit_code)} {_esc(p.unit_name or '')} ({p.share_of_grid:.0%})"
            for p in pairs.itertuples()
        ]
        shown = "; ".join(units) or "<span class='gridmap-alarm'>none (uncovered)</span>"
        if len(units) > 1:
            shown = f"<span class='gridmap-alarm'>split 分割</span>: {shown}"
        rows.append((_esc(KNOWN_THEMES.get(theme, theme)), shown))
    return rows


def _grid_info_html(data, row, stats, selection, options) -> str:
    code = row["code"]
    mine = stats[stats["code"] == code].iloc[0]
    community = data.level("community").set_index("code")
    parent = row["parent_code"]
    street_code = community["parent_code"].get(parent) if parent in community.index else None
    staff = data.staff[data.staff["area_code"] == code]
    micro = data.level("micro_grid")
    n_micro = int((micro["parent_code"] == code).sum()) if len(micro) else 0
    rows = [
        ("编码 code", f"<span class='gridmap-code'>{_esc(code)}</span>"),
        ("类型 kind", _esc(KIND_NAMES.get(str(row.get("kind")), row.get("kind")))),
        ("社区 community", _esc(community["name"].get(parent, parent))),
        ("街道 street", _esc(_names(data, "street").get(str(street_code), street_code))),
        ("户数 households", _number(row.get("households"))),
        ("人口 population", _number(row.get("population"))),
        ("责任 responsible", _esc(row.get("responsible"))),
        ("微网格 micro-grids", str(n_micro)),
    ]
    rows += _staff_rows(staff, options.staff)
    rows += _theme_rows(data, code)
    if options.incidents:
        rows += [
            ("事件 incidents", _number(mine["count"])),
            ("每千人 per 1,000", _number(mine["rate_per_1000"], 2)),
            ("每平方公里 per km²", _number(mine["per_km2"], 1)),
        ]
    if options.incidents and options.hot_spots:
        rows.append(
            (
                "Gi*",
                f"{_esc(ly.HOT_LABELS[int(mine['bin'])])}, z = {mine['z']:.2f}, "
                f"p = {mine['p']:.3f}",
            )
        )
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    back = (
        f"<div><a href='{_esc(options.map_url)}'>← district map</a></div>"
        if options.map_url
        else ""
    )
    if not options.incidents:
        return (
            f"<h4>{_esc(row['name'])}</h4><div class='gridmap-meta'>网格信息公示 public grid "
            f"information</div><table>{table}</table>{back}"
        )
    return (
        f"<h4>{_esc(row['name'])}</h4><div class='gridmap-meta'>"
        f"{_esc(selection.describe())}</div><table>{table}</table>{_category_legend()}"
        f"{back}"
    )


def _staff_rows(staff, shown: str) -> list[tuple[str, str]]:
    """The grid's staff as the audience may see them: phones for signed-in callers only."""
    if shown == "none":
        return []
    if staff.empty:
        return [("网格员 staff", "<span class='gridmap-alarm'>none (unstaffed)</span>")]
    rows = []
    for s in staff.itertuples():
        role = _esc(ROLE_NAMES.get(s.role, s.role))
        if shown == "roles":
            rows.append((role, "—"))
        elif shown == "names":
            rows.append((role, _esc(s.name)))
        else:
            rows.append((role, f"{_esc(s.name)} {_esc(s.phone)}"))
    return rows
