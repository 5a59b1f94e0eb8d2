"""The layers of the map pages: folium objects built from gis/ results.

Each layer lives in its own Leaflet pane, stacked as :data:`PANES` says:
filled themes (choropleth, hot spots) at the bottom, the interactive grid
layer above them (its tooltip carries the numbers of the themes too), outlines
of the coarser levels above the grids, and alarms (coverage defects, incidents
outside every grid) on top. A pane also gives each layer its own SVG in the
page, which is what the browser test counts.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import folium
import numpy as np
import pandas as pd
from folium.plugins import Search

from app.maps.elements import DataGeoJson, LazyHeatMap, LazyMarkerCluster, js, js_json
from app.maps.geometry import display_geometries, lonlat_to_display, records

__all__ = [
    "ALARM",
    "CHOROPLETH_COLOURS",
    "HOT_COLOURS",
    "HOT_LABELS",
    "MAJOR_COLOURS",
    "PANES",
    "Classes",
    "SPLIT_GRID",
    "THEME_COLOURS",
    "add_panes",
    "choropleth_classes",
    "theme_style",
]

#: Pane name → z-index (Leaflet's overlayPane is 400, markers 600, tooltips 650).
PANES: dict[str, int] = {
    "choropleth": 405,
    "hotspots": 410,
    "grids": 420,
    "themes": 422,
    "micro_grids": 425,
    "communities": 430,
    "theme_split": 433,
    "streets": 435,
    "focus": 438,
    "defects": 440,
    "incidents": 445,
    "outside": 450,
}
#: Coverage defects and incidents outside coverage: one colour no theme uses.
ALARM = "#e6007e"
#: ArcGIS's hot spot palette, by confidence bin (docs/domain.md, "Systems users compare
#: gridmap with").
HOT_COLOURS = {
    3: "#d62f27",
    2: "#ed7551",
    1: "#fab984",
    0: "#ffffbf",
    -1: "#c0ccbe",
    -2: "#849eba",
    -3: "#4575b5",
}
HOT_LABELS = {
    3: "hot spot, 99 %",
    2: "hot spot, 95 %",
    1: "hot spot, 90 %",
    0: "not significant",
    -1: "cold spot, 90 %",
    -2: "cold spot, 95 %",
    -3: "cold spot, 99 %",
}
#: ColorBrewer YlGnBu, 5 classes: sequential, and apart from the hot spot reds.
CHOROPLETH_COLOURS = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
#: Incident markers by major category class (taxonomy codes 01–04).
MAJOR_COLOURS = {"01": "#1b9e77", "02": "#d95f02", "03": "#7570b3", "04": "#e7298a"}
OUTLINES = {
    "street": {"color": "#1a1a1a", "weight": 3.0, "opacity": 0.9, "fill": False},
    "community": {
        "color": "#404040",
        "weight": 1.6,
        "opacity": 0.9,
        "fill": False,
        "dashArray": "6 3",
    },
    "grid": {
        "color": "#5a6570",
        "weight": 0.8,
        "opacity": 0.9,
        "fillColor": "#ffffff",
        "fillOpacity": 0.0,
    },
    "micro_grid": {
        "color": "#8a8f96",
        "weight": 0.5,
        "opacity": 0.8,
        "fillColor": "#ffffff",
        "fillOpacity": 0.0,
    },
}


#: Outline colour of each department's theme (多格合一); other themes are drawn in ochre.
THEME_COLOURS = {
    "police": "#1f4e9c",
    "market": "#2e8b57",
    "party": "#c0392b",
    "mediation": "#7d3c98",
}
#: Grids a theme's boundary cuts through: filled, so they stand out, and drawn above the
#: theme's units so that hovering one names the grid and every unit it is split into.
SPLIT_GRID = {
    "color": "#d35400",
    "weight": 1.5,
    "opacity": 0.9,
    "fillColor": "#f39c12",
    "fillOpacity": 0.45,
}


def theme_style(theme: str) -> dict:
    """The outline style of a theme's units: thick, dashed, in the theme's colour."""
    return {
        "color": THEME_COLOURS.get(theme, "#b7950b"),
        "weight": 2.5,
        "opacity": 0.95,
        "dashArray": "10 4",
        "fillColor": "#ffffff",
        "fillOpacity": 0.0,
    }


def add_panes(m: folium.Map, names: Sequence[str] = tuple(PANES)) -> None:
    """Create the panes the layers are drawn in."""
    for name in names:
        folium.map.CustomPane(name, z_index=PANES[name], pointer_events=True).add_to(m)


# -- data of a layer -------------------------------------------------------------------
def data_layer(
    ids: Any,
    properties: pd.DataFrame | None,
    geometries_js: str,
    pick: Sequence[int] | None = None,
    **kwargs: Any,
) -> DataGeoJson:
    """A :class:`DataGeoJson` over a geometry array, with a property table.

    Parameters
    ----------
    ids : sequence of str
        Feature ids (codes), one per feature.
    properties : pandas.DataFrame or None
        One row per feature (NaN becomes null).
    geometries_js : str
        JavaScript array of GeoJSON geometries (a shared array or inline JSON).
    pick : sequence of int, optional
        Position of each feature's geometry in the array (default: same order).
    **kwargs
        For :class:`DataGeoJson` (style, style_function, tooltip, name, show, pane, …).
    """
    ids = [str(i) for i in ids]
    columns = [] if properties is None else list(properties.columns)
    rows = (
        [[]] * len(ids) if properties is None else [list(r.values()) for r in records(properties)]
    )
    python_side = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": i,
                "geometry": None,
                "properties": dict(zip(columns, r, strict=True)),
            }
            for i, r in zip(ids, rows, strict=True)
        ],
    }
    table = {
        "ids": ids,
        "columns": columns,
        "rows": rows if columns else None,
        "pick": None if pick is None else [int(k) for k in pick],
    }
    return DataGeoJson(python_side, geometries_js, table, **kwargs)


def inline_geometries(geometries: list) -> str:
    """A JavaScript array literal of geometries, for layers nothing else shares."""
    return js_json(geometries)


# -- boundaries ------------------------------------------------------------------------
def outline_layer(
    codes: Any,
    geometries_js: str,
    name: str,
    style: dict,
    pane: str,
    show: bool = True,
    pick: Sequence[int] | None = None,
) -> DataGeoJson:
    """Outlines of one level, not interactive (the grids below answer the mouse)."""
    return data_layer(
        codes,
        None,
        geometries_js,
        pick,
        name=name,
        style=style,
        show=show,
        pane=pane,
        interactive=False,
    )


def area_layer(
    properties: pd.DataFrame,
    geometries_js: str,
    name: str,
    style: dict,
    pane: str,
    tooltip: dict[str, str],
    show: bool = True,
    on_each_feature: str | None = None,
    pick: Sequence[int] | None = None,
) -> DataGeoJson:
    """Areas with a tooltip of ``tooltip`` (property → label); ``properties`` has ``code``."""
    return data_layer(
        properties["code"],
        properties[list(tooltip)],
        geometries_js,
        pick,
        name=name,
        style=style,
        show=show,
        pane=pane,
        highlight={"weight": style["weight"] + 2, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(list(tooltip), aliases=list(tooltip.values()), sticky=True)
        if len(properties)
        else None,
        on_each_feature=js(on_each_feature) if on_each_feature else None,
    )


def grid_search(layer: folium.GeoJson) -> Search:
    """Search box over the grid layer by unified code (Leaflet.Search)."""
    return Search(
        layer=layer,
        search_label="code",
        geom_type="Polygon",
        position="topleft",
        placeholder="网格编码 grid code",
        collapsed=False,
        color="#000000",
        weight=4,
        fillOpacity=0.0,
    )


# -- themes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Classes:
    """Class breaks of a choropleth: ``edges`` has one more entry than ``colours``."""

    edges: tuple[float, ...]
    colours: tuple[str, ...]

    def colour(self, value: float) -> str:
        k = int(np.searchsorted(self.edges[1:-1], value, side="right"))
        return self.colours[min(k, len(self.colours) - 1)]

    def labels(self, decimals: int) -> list[str]:
        return [
            f"{lo:,.{decimals}f} – {hi:,.{decimals}f}"
            for lo, hi in zip(self.edges[:-1], self.edges[1:], strict=True)
        ]


def choropleth_classes(values: np.ndarray, k: int = 5) -> Classes:
    """Quantile classes of ``values`` (ties merged, so there may be fewer than ``k``)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return Classes((0.0, 0.0), CHOROPLETH_COLOURS[:1])
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, k + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    n = len(edges) - 1
    palette = (
        CHOROPLETH_COLOURS
        if n == len(CHOROPLETH_COLOURS)
        else tuple(
            CHOROPLETH_COLOURS[round(i * (len(CHOROPLETH_COLOURS) - 1) / max(n - 1, 1))]
            for i in range(n)
        )
    )
    return Classes(tuple(float(e) for e in edges), palette)


def choropleth_layer(
    stats: pd.DataFrame, geometries_js: str, measure: str, classes: Classes, name: str, show: bool
) -> DataGeoJson:
    """Grids filled by class of ``measure`` (no data: grey)."""
    fill = {
        code: ("#cccccc" if not np.isfinite(v) else classes.colour(v))
        for code, v in zip(stats["code"], stats[measure].astype(float), strict=True)
    }
    return data_layer(
        stats["code"],
        None,
        geometries_js,
        name=name,
        show=show,
        pane="choropleth",
        interactive=False,
        style_function=lambda f: {"stroke": False, "fillColor": fill[f["id"]], "fillOpacity": 0.75},
    )


def hotspot_layer(stats: pd.DataFrame, geometries_js: str, name: str, show: bool) -> DataGeoJson:
    """Significant Gi* bins in ArcGIS's diverging colours; other grids are not drawn."""
    keep = np.flatnonzero(stats["bin"].to_numpy() != 0)
    bins = dict(zip(stats["code"], stats["bin"].astype(int), strict=True))
    return data_layer(
        stats["code"].iloc[keep],
        None,
        geometries_js,
        keep.tolist(),
        name=name,
        show=show,
        pane="hotspots",
        interactive=False,
        style_function=lambda f: {
            "stroke": False,
            "fillColor": HOT_COLOURS[bins[f["id"]]],
            "fillOpacity": 0.7,
        },
    )


# -- coverage --------------------------------------------------------------------------
def defect_layer(defects: pd.DataFrame, simplify_m: float, datum: str, name: str) -> DataGeoJson:
    """Gaps, overlaps, slivers, nesting and invalid areas filled, unstaffed grids outlined."""
    polygons = defects[defects["type"] != "outside_incident"].reset_index(drop=True)
    props = pd.DataFrame(
        {
            "type": polygons["type"],
            "level": polygons["level"],
            "codes": [", ".join(c) for c in polygons["codes"]],
            "area_m2": polygons["area_m2"].round(1),
            "detail": polygons["detail"],
        }
    )
    geometries = inline_geometries(display_geometries(polygons, simplify_m, datum))
    ids = [f"defect-{i}" for i in range(len(polygons))]

    def style(feature: dict) -> dict:
        if feature["properties"]["type"] == "unstaffed":
            return {
                "color": ALARM,
                "weight": 3,
                "dashArray": "6 4",
                "fillOpacity": 0.05,
                "fillColor": ALARM,
            }
        return {"color": ALARM, "weight": 2, "fillColor": ALARM, "fillOpacity": 0.55}

    return data_layer(
        ids,
        props,
        geometries,
        name=name,
        pane="defects",
        style_function=style,
        tooltip=_tooltip(
            ids, ["type", "codes", "area_m2", "detail"], aliases=["defect", "areas", "m²", ""]
        ),
    )


def outside_layer(defects: pd.DataFrame, datum: str, name: str) -> DataGeoJson:
    """Located incidents that no grid covers, as alarm-coloured dots."""
    points = defects[defects["type"] == "outside_incident"].reset_index(drop=True)
    lon, lat = (
        lonlat_to_display(points.geometry.x, points.geometry.y, datum)
        if len(points)
        else (np.array([]), np.array([]))
    )
    geometries = [
        {"type": "Point", "coordinates": [float(x), float(y)]}
        for x, y in zip(lon, lat, strict=True)
    ]
    props = pd.DataFrame(
        {"nearest": [c[0] if c else None for c in points["codes"]], "detail": points["detail"]}
    )
    ids = [f"outside-{i}" for i in range(len(points))]
    return data_layer(
        ids,
        props,
        inline_geometries(geometries),
        name=name,
        pane="outside",
        marker=_dot(7, 2, "outside"),
        style={"color": "#000000", "fillColor": ALARM, "fillOpacity": 0.9},
        tooltip=_tooltip(ids, ["detail"], labels=False),
    )


# -- incidents -------------------------------------------------------------------------
def cluster_layer(
    incidents: pd.DataFrame,
    categories: dict[str, str],
    datum: str,
    limit: int,
    name: str,
    seed: int = 0,
) -> LazyMarkerCluster:
    """Clustered incident dots: all of the selection, or a seeded sample of ``limit``.

    Rows are arrays (not GeoJSON) with category and source as indexes into two
    small tables, which keeps thousands of points to a few bytes each.
    """
    located = incidents[np.isfinite(incidents["lon"]) & np.isfinite(incidents["lat"])]
    if len(located) > limit:
        rng = np.random.default_rng(seed)
        located = located.iloc[np.sort(rng.choice(len(located), limit, replace=False))]
    lon, lat = lonlat_to_display(located["lon"], located["lat"], datum)
    cats, cat_index = np.unique(located["category"].fillna("").to_numpy(str), return_inverse=True)
    srcs, src_index = np.unique(located["source"].fillna("").to_numpy(str), return_inverse=True)
    days = located["reported_at"].dt.strftime("%Y-%m-%d").tolist()
    rows = [
        list(r)
        for r in zip(
            lat.tolist(), lon.tolist(), cat_index.tolist(), src_index.tolist(), days, strict=True
        )
    ]
    table = [[c, categories.get(c, "")] for c in cats]
    callback = (
        f"gridmapIncidentMarker({js_json(table)}, {js_json(srcs.tolist())}, "
        f"{js_json(MAJOR_COLOURS)})"
    )
    return LazyMarkerCluster(
        rows,
        callback,
        name=name,
        show=False,
        options={"chunkedLoading": True, "maxClusterRadius": 60},
    )


def heat_layer(points: pd.DataFrame, datum: str, name: str) -> LazyHeatMap:
    """Kernel density cells of the selection as a Leaflet.heat layer."""
    lon, lat = lonlat_to_display(points["lon"], points["lat"], datum)
    weight = np.round(points["weight"].to_numpy(dtype=float), 3)
    rows = [list(r) for r in zip(lat.tolist(), lon.tolist(), weight.tolist(), strict=True)]
    return LazyHeatMap(
        rows, name=name, show=False, radius=14, blur=18, min_opacity=0.25, max_zoom=15
    )


def incident_points(
    incidents: pd.DataFrame, categories: dict[str, str], datum: str, name: str
) -> DataGeoJson:
    """Every incident of a selection as a dot coloured by major class (the grid page)."""
    lon, lat = lonlat_to_display(incidents["lon"], incidents["lat"], datum)
    ok = np.isfinite(lon) & np.isfinite(lat)
    chosen = incidents[ok]
    geometries = [
        {"type": "Point", "coordinates": [float(x), float(y)]}
        for x, y in zip(lon[ok], lat[ok], strict=True)
    ]
    props = pd.DataFrame(
        {
            "category": [f"{c} {categories.get(c, '')}" for c in chosen["category"]],
            "major": [str(c)[:2] for c in chosen["category"]],
            "reported": chosen["reported_at"].dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
            "source": chosen["source"].to_numpy(),
            "status": chosen["status"].to_numpy(),
            "micro_grid": chosen["micro_grid_code"].to_numpy(),
        }
    )
    ids = [f"incident-{i}" for i in chosen["id"]]
    return data_layer(
        ids,
        props,
        inline_geometries(geometries),
        name=name,
        pane="incidents",
        marker=_dot(5, 1, "incidents"),
        style_function=lambda f: {
            "color": "#333333",
            "fillOpacity": 0.85,
            "fillColor": MAJOR_COLOURS.get(f["properties"]["major"], "#888888"),
        },
        tooltip=_tooltip(
            ids,
            ["category", "reported", "source", "status", "micro_grid"],
            aliases=["category", "reported", "source", "status", "micro-grid"],
        ),
    )


def _dot(radius: int, weight: int, pane: str) -> folium.CircleMarker:
    marker = folium.CircleMarker(radius=radius, fill=True, weight=weight)
    marker.options["pane"] = pane  # folium's path options drop it; Leaflet reads it
    return marker


def _tooltip(ids: Sequence, fields: list[str], **kwargs: Any) -> folium.GeoJsonTooltip | None:
    # folium refuses a tooltip on a layer without features (it checks the fields)
    if not len(ids):
        return None
    return folium.GeoJsonTooltip(fields, sticky=True, **kwargs)


def swatch(colour: str, kind: str = "") -> str:
    """A legend colour sample."""
    return (
        f'<span class="gridmap-swatch {kind}" style="background:{html.escape(colour)};'
        f'border-color:{html.escape(colour)}"></span>'
    )
