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
from folium.template import Template
from folium.utilities import JsCode, get_obj_in_upper_tree

__all__ = ["DataGeoJson", "GridmapAssets", "LayerRegistry", "Panel", "RawScript",
           "SharedGeometries", "js", "js_json"]


def js(code: str) -> JsCode:
    """A JavaScript expression folium writes into the page as is."""
    return JsCode(code)


class GridmapAssets(JSCSSMixin):
    """Our stylesheet and script (app/maps/static), served or inlined like folium's own."""

    _template = Template("")
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


class RawScript(Element):
    """Script text added to the page as is.

    branca compiles every element's rendered script as a Jinja template again
    (``Element(script(...))``): seconds for megabytes of GeoJSON, and a ``{{``
    inside a name would be read as Jinja. Data goes through this instead.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "RawScript"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


def js_json(value: Any) -> str:
    """Compact JSON for a ``<script>``: UTF-8 kept, ``</`` escaped so no tag can close."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


class SharedGeometries(MacroElement):
    """Geometry arrays the page defines once and several layers draw from.

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
        return f"gridmapGeom[{json.dumps(key)}]"

    def render(self, **kwargs: Any) -> None:
        script = self.get_root().script  # type: ignore[attr-defined]
        for key, text in self.arrays.items():
            script.add_child(RawScript(f"gridmapGeom[{json.dumps(key)}] = {text};\n"),
                             name=f"{self.get_name()}_{key}")
        super().render(**kwargs)


class DataGeoJson(GeoJson):
    """A folium GeoJson whose features reach the page through a :class:`RawScript`.

    folium sees the features with their ids and properties but without
    geometries (enough for its style maps, tooltips and search checks); the
    page builds the real FeatureCollection from ``features_js``, a call of
    ``gridmapFeatures`` over shared geometries.

    Parameters
    ----------
    data : dict
        FeatureCollection with ids and properties (geometries may be None).
    features_js : str
        JavaScript expression evaluating to the FeatureCollection to draw.
    **kwargs
        As for :class:`folium.GeoJson`.
    """

    def __init__(self, data: dict, features_js: str, style: dict | None = None,
                 highlight: dict | None = None, **kwargs: Any) -> None:
        # A constant style or highlight needs no per-feature style map: folium would
        # serialise the same dict once per feature (seconds for 5,000 micro-grids).
        self.constant = {"style": style, "highlight": highlight}
        if style is not None:
            kwargs["style_function"] = lambda feature: style
        if highlight is not None:
            kwargs["highlight_function"] = lambda feature: highlight
        super().__init__(data, **kwargs)
        self.features_js = features_js

    def render(self, **kwargs: Any) -> None:
        self.parent_map = get_obj_in_upper_tree(self, Map)
        # folium's own GeoJson.render, minus the data: style maps from every feature,
        # then the template sees one feature without geometry (Leaflet skips it) so
        # that folium's checks (tooltip fields) still find the properties.
        mapper = GeoJsonStyleMapper(self.data, self.feature_identifier, self)
        if self.style and self.data["features"]:
            self.style_map = self._constant_map("style") or mapper.get_style_map(
                self.style_function)
        if self.highlight and self.data["features"]:
            self.highlight_map = self._constant_map("highlight") or mapper.get_highlight_map(
                self.highlight_function)
        full = self.data
        self.data = {"type": "FeatureCollection", "features": [
            {**f, "geometry": None} for f in full["features"][:1]]}
        try:
            Layer.render(self, **kwargs)
        finally:
            self.data = full
        self.get_root().script.add_child(  # type: ignore[attr-defined]
            RawScript(f"{self.get_name()}_add({self.features_js});\n"),
            name=self.get_name() + "_data")

    def _constant_map(self, which: str) -> dict | None:
        style = self.constant[which]
        # the shape folium's template reads: style JSON text → feature ids, "default" key
        return None if style is None else {"default": GeoJsonStyleMapper._to_key(style)}
