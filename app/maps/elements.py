"""Small folium elements of our own: page assets, panels (legend, info), the layer registry.

Each is a folium ``MacroElement`` rendered into the map's script, so the pages
stay ordinary folium figures (and :func:`app.maps.assets.localize` sees their
assets like any plugin's).
"""

from __future__ import annotations

import json
from typing import Any

from branca.element import Element, MacroElement
from folium import Map
from folium.elements import JSCSSMixin
from folium.features import GeoJson, GeoJsonStyleMapper
from folium.map import Layer
from folium.plugins import HeatMap, MarkerCluster
from folium.template import Template
from folium.utilities import JsCode, get_obj_in_upper_tree

__all__ = [
    "DataGeoJson",
    "GridmapAssets",
    "LayerRegistry",
    "LazyHeatMap",
    "LazyMarkerCluster",
    "Panel",
    "Raw",
    "SharedGeometries",
    "add_json_block",
    "js",
    "js_json",
]


def js(code: str) -> JsCode:
    """A JavaScript expression folium writes into the page as is."""
    return JsCode(code)


class GridmapAssets(JSCSSMixin):
    """Our stylesheet and script (app/maps/static), served or inlined like folium's own."""

    # No favicon request (a 404 in the console): the page names an empty one.
    _template = Template("""
        {% macro header(this, kwargs) %}<link rel="icon" href="data:,">{% endmacro %}
    """)
    # Placeholders: localize() always replaces them with a served URL or inline content.
    default_js = [("gridmap_js", "gridmap:gridmap.js")]
    default_css = [("gridmap_css", "gridmap:gridmap.css")]

    def __init__(self) -> None:
        super().__init__()
        self._name = "GridmapAssets"


class Panel(JSCSSMixin):
    """A Leaflet control holding trusted HTML built by the page (legend, grid details).

    Parameters
    ----------
    html : str
        Markup; every value from the data must already be escaped.
    position : str
        Leaflet control corner.
    css_class : str
        Extra class of the panel's ``div``.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", {{ ("gridmap-panel " ~ this.css_class)|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html: str, position: str = "bottomleft", css_class: str = "") -> None:
        super().__init__()
        self._name = "Panel"
        self.html = html
        self.position = position
        self.css_class = css_class


class LayerRegistry(JSCSSMixin):
    """Publishes the page's layers as ``window.gridmap`` and marks the page ready.

    Added last, so every layer it names exists when its script runs. Tests and
    benchmarks wait for ``html[data-gridmap-ready]``; people can script the map
    from the console (``gridmap.layers.grids``).
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        gridmapRegister({{ this._parent.get_name() }}, {
        {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
        {%- endfor %}
        }, {{ this.meta|tojson }});
        {% endmacro %}
    """)

    def __init__(self, layers: dict[str, Any], meta: dict[str, Any]) -> None:
        super().__init__()
        self._name = "LayerRegistry"
        self.layers = layers
        self.meta = meta


class Raw(Element):
    """Text added to the page as is.

    branca compiles every element's rendered script as a Jinja template again
    (``Element(script(...))``): seconds for megabytes of GeoJSON, and a ``{{``
    inside a name would be read as Jinja. Data goes through this instead.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Raw"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


def js_json(value: Any) -> str:
    """Compact JSON for a page: UTF-8 kept; every ``<`` escaped, so no text in the data
    can close or disturb the ``<script>`` element holding it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def add_json_block(element: Element, block: str, json_text: str) -> str:
    """Put data in the page as ``<script type="application/json">``; returns its JS reader.

    The browser parses such a block as text and ``JSON.parse`` reads it many
    times faster than V8 compiles the same data written as a JavaScript literal
    (the page's time to first draw is mostly that).
    """
    root = element.get_root()
    root.html.add_child(  # type: ignore[attr-defined]
        Raw(f'<script type="application/json" id="gridmap-{block}">{json_text}</script>\n'),
        name=f"gridmap-{block}",
    )
    return f"gridmapJSON({json.dumps(block)})"


def _data_call(element: Any, call: str, show: bool) -> None:
    """Run ``call`` now, or for a hidden layer the first time it is shown.

    Hidden layers (micro-grids, clusters, heat…) cost nothing at load: their
    features are only made when someone ticks them in the layer control.
    """
    name = element.get_name()
    text = f"{call};\n" if show else f'{name}.once("add", function () {{ {call}; }});\n'
    element.get_root().script.add_child(Raw(text), name=name + "_data")


class SharedGeometries(MacroElement):
    """Geometry arrays the page holds once and several layers draw from.

    The grids' shapes feed the grid layer, the choropleth and the hot spots:
    written once, they cost a third. :meth:`add` returns the JavaScript
    expression of an array; add this element to the map before the layers.
    """

    _template = Template("")

    def __init__(self) -> None:
        super().__init__()
        self._name = "SharedGeometries"
        self.arrays: dict[str, str] = {}

    def add(self, key: str, json_text: str) -> str:
        """Register an array (its JSON text) under ``key``; returns its JS expression."""
        self.arrays.setdefault(key, json_text)
        return f"gridmapJSON({json.dumps('geom-' + key)})"

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # renders into the figure
        for key, text in self.arrays.items():
            add_json_block(self, f"geom-{key}", text)
        super().render(**kwargs)


class DataGeoJson(GeoJson):
    """A folium GeoJson whose features reach the page as JSON blocks, built in the browser.

    folium sees the features with their ids and properties but without
    geometries (enough for its style maps, tooltips and search checks); the
    page assembles the FeatureCollection with ``gridmapFeatures`` from a
    geometry array (often shared) and a property table.

    Parameters
    ----------
    data : dict
        FeatureCollection with ids and properties (geometries None).
    geometries_js : str
        JavaScript expression of the geometry array.
    table : dict
        ``ids``, ``columns``, ``rows`` and ``pick`` (geometry index per feature, or None).
    style, highlight : dict, optional
        A constant style or highlight (instead of a function).
    **kwargs
        As for :class:`folium.GeoJson`.
    """

    def __init__(
        self,
        data: dict,
        geometries_js: str,
        table: dict,
        style: dict | None = None,
        highlight: dict | None = None,
        **kwargs: Any,
    ) -> None:
        # A constant style or highlight needs no per-feature style map: folium would
        # serialise the same dict once per feature (seconds for 5,000 micro-grids).
        self.constant = {"style": style, "highlight": highlight}
        if style is not None:
            kwargs["style_function"] = lambda feature: style
        if highlight is not None:
            kwargs["highlight_function"] = lambda feature: highlight
        super().__init__(data, **kwargs)
        self.geometries_js = geometries_js
        self.table = table

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # renders into the figure
        self.parent_map = get_obj_in_upper_tree(self, Map)  # type: ignore[assignment]
        # folium's own GeoJson.render, minus the data: style maps from every feature,
        # then the template sees one feature without geometry (Leaflet skips it) so
        # that folium's checks (tooltip fields) still find the properties.
        mapper = GeoJsonStyleMapper(self.data, self.feature_identifier, self)
        if self.style and self.data["features"]:
            self.style_map = self._constant_map("style") or mapper.get_style_map(
                self.style_function
            )
        if self.highlight and self.data["features"]:
            self.highlight_map = self._constant_map("highlight") or mapper.get_highlight_map(
                self.highlight_function
            )
        full = self.data
        self.data = {
            "type": "FeatureCollection",
            "features": [{**f, "geometry": None} for f in full["features"][:1]],
        }
        try:
            Layer.render(self, **kwargs)
        finally:
            self.data = full
        table = add_json_block(self, f"table-{self.get_name()}", js_json(self.table))
        _data_call(
            self,
            f"{self.get_name()}_add(gridmapFeatures({self.geometries_js}, {table}))",
            self.show,
        )

    def _constant_map(self, which: str) -> dict | None:
        style = self.constant[which]
        # the shape folium's template reads: style JSON text → feature ids, "default" key
        return None if style is None else {"default": GeoJsonStyleMapper._to_key(style)}


class LazyMarkerCluster(MarkerCluster):
    """A marker cluster of rows turned into markers in the browser by ``callback``.

    Parameters
    ----------
    rows : list of list
        ``[lat, lon, …]`` per marker, written once as a JSON block.
    callback : str
        JavaScript expression of a function ``row → marker``.
    **kwargs
        As for :class:`folium.plugins.MarkerCluster` (name, show, options…).
    """

    def __init__(self, rows: list, callback: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows = rows
        self.callback = callback

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # renders into the figure
        super().render(**kwargs)
        rows = add_json_block(self, f"rows-{self.get_name()}", js_json(self.rows))
        _data_call(self, f"{self.get_name()}.addLayers({rows}.map({self.callback}))", self.show)


class LazyHeatMap(HeatMap):
    """folium's HeatMap with its points in a JSON block, drawn when first shown."""

    def __init__(self, rows: list, **kwargs: Any) -> None:
        super().__init__([[0.0, 0.0]], **kwargs)
        self.data = []  # the template's literal stays empty
        self.rows = rows

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # renders into the figure
        super().render(**kwargs)
        rows = add_json_block(self, f"rows-{self.get_name()}", js_json(self.rows))
        _data_call(self, f"{self.get_name()}.setLatLngs({rows})", self.show)
