"""The before/after page of a redesign plan: old and new boundaries, workload, metrics.

New grids are coloured by workload (1 = the average grid before the redesign,
on one scale for both layers), changed grids are outlined in an alarm colour,
the old boundaries can be laid over them, and a table gives every metric before
and after. Assets are local, as on every gridmap page.
"""

from __future__ import annotations

import html

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Figure

from app.maps.assets import AssetStore
from app.maps.page import render_page

# Workload classes (× the average grid before): light, balanced, heavy.
BREAKS = [0.0, 0.6, 0.8, 1.2, 1.5, float("inf")]
COLOURS = ["#2c7bb6", "#abd9e9", "#ffffbf", "#fdae61", "#d7191c"]
CHANGED = "#e6007e"
METRICS = [
    ("k", "grids"),
    ("cv", "workload CV"),
    ("max_mean", "max / mean"),
    ("min_mean", "min / mean"),
    ("within_band", "within ±20 %"),
    ("pp_mean", "Polsby–Popper mean"),
    ("contiguity_violations", "not contiguous"),
    ("nesting_violations", "outside community"),
    ("households_kept", "households kept"),
    ("unstaffed_grids", "无网格员 unstaffed grids"),
]


def build_redesign_page(
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    metrics: dict,
    baseline: dict,
    title: str,
    store: AssetStore,
    asset_prefix: str | None,
) -> str:
    """The page as HTML.

    Parameters
    ----------
    before, after : GeoDataFrame
        Old and new grids in EPSG:4326 with ``code``, ``workload``; ``after``
        also ``changed`` (bool).
    metrics, baseline : dict
        Plan metrics after and before (keys of ``gis.redesign.METRIC_KEYS``);
        ``baseline`` may also hold ``window`` (the days whose incidents were
        weighed) and ``window_incidents`` (how many), shown under the title.
    asset_prefix : str or None
        URL prefix of served assets, or None for a standalone page (inlined).
    """
    west, south, east, north = after.total_bounds
    m = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=13,
        tiles=None,
        control_scale=True,
    )
    m.fit_bounds([[south, west], [north, east]])
    _layer(after, "after: new grids by workload", fill=True).add_to(m)
    _layer(before, "before: old grid boundaries", fill=False).add_to(m)
    _layer(after[after["changed"]], "changed grids", fill=False, colour=CHANGED, weight=2.5).add_to(
        m
    )
    folium.LayerControl(collapsed=False).add_to(m)
    root = m.get_root()
    assert isinstance(root, Figure)  # folium.Map's root is always its Figure
    root.html.add_child(folium.Element(_panel(title, after, metrics, baseline)))
    return render_page(m, store, asset_prefix)


def _layer(
    frame: gpd.GeoDataFrame, name: str, fill: bool, colour: str = "#555", weight: float = 0.8
) -> folium.GeoJson:
    data = frame[["code", "workload", "geometry"]].copy()
    data["workload"] = data["workload"].round(2)
    data["geometry"] = data.geometry.simplify(0.00001, preserve_topology=True)

    def style(feature):
        load = feature["properties"]["workload"]
        return {
            "fillColor": _colour(load),
            "fillOpacity": 0.7 if fill else 0.0,
            "color": colour if not fill else "#777",
            "weight": weight,
            "dashArray": None if fill else "4 3",
        }

    return folium.GeoJson(
        data,
        name=name,
        style_function=style,
        tooltip=folium.GeoJsonTooltip(["code", "workload"], aliases=["grid", "workload"]),
    )


def _colour(load: float | None) -> str:
    if load is None or pd.isna(load):
        return "#cccccc"
    for upper, colour in zip(BREAKS[1:], COLOURS, strict=True):
        if load < upper:
            return colour
    return COLOURS[-1]


def _panel(title: str, after: gpd.GeoDataFrame, metrics: dict, baseline: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(baseline.get(key))}</td>"
        f"<td>{_fmt(metrics.get(key))}</td></tr>"
        for key, name in METRICS
    )
    legend = "".join(
        f"<span style='background:{c};width:14px;height:10px;display:inline-block'></span> "
        f"{lo:g}–{'' if hi == float('inf') else f'{hi:g}'} "
        for c, lo, hi in zip(COLOURS, BREAKS[:-1], BREAKS[1:], strict=True)
    )
    changed = int(after["changed"].sum())
    return (
        "<div id='redesign-panel' style='position:fixed;top:10px;left:50px;z-index:1000;"
        "background:white;padding:8px 10px;font:12px sans-serif;border-radius:4px;"
        "box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:330px'>"
        f"<b>{html.escape(title)}</b><br>{changed} of {len(after)} new grids changed "
        f"(<span style='color:{CHANGED}'>outlined</span>)<br>{_window(baseline)}"
        "<table style='margin-top:4px'><tr><th></th><th>before</th><th>after</th></tr>"
        f"{rows}</table><div style='margin-top:4px'>workload (1 = average grid before): "
        f"{legend}</div></div>"
    )


def _window(baseline: dict) -> str:
    if not baseline.get("window"):
        return ""
    return (
        f"<span id='redesign-window'>事件统计期 incidents weighed: "
        f"{html.escape(str(baseline['window']))} "
        f"({_fmt(baseline.get('window_incidents'))} incidents)</span><br>"
    )


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return f"{int(value):,}"
