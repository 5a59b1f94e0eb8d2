/* gridmap map pages: the layer registry and the few behaviours folium has no option for.
   Served by the app (or inlined) like the vendored libraries; no network access. */
(function () {
  "use strict";

  /* Data of the page: <script type="application/json" id="gridmap-…"> blocks, parsed once. */
  var parsed = {};
  window.gridmapJSON = function (block) {
    if (!(block in parsed)) {
      parsed[block] = JSON.parse(document.getElementById("gridmap-" + block).textContent);
    }
    return parsed[block];
  };

  /* A FeatureCollection from a geometry array and a table {ids, columns, rows, pick}:
     feature i has geometry geometries[pick[i]] (default i); null geometries are skipped. */
  window.gridmapFeatures = function (geometries, table) {
    var features = [];
    var columns = table.columns || [];
    for (var i = 0; i < table.ids.length; i++) {
      var geometry = geometries[table.pick ? table.pick[i] : i];
      if (!geometry) { continue; }
      var properties = {};
      var row = table.rows ? table.rows[i] : null;
      for (var c = 0; row && c < columns.length; c++) { properties[columns[c]] = row[c]; }
      features.push({ type: "Feature", id: table.ids[i], properties: properties,
                      geometry: geometry });
    }
    return { type: "FeatureCollection", features: features };
  };

  var STYLE_KEYS = ["color", "weight", "opacity", "fillColor", "fillOpacity", "dashArray"];

  function baseStyle(layer) {
    var style = {};
    STYLE_KEYS.forEach(function (key) { style[key] = layer.options[key]; });
    return style;
  }

  /* Publish the page's layers as window.gridmap and flag the page ready once drawn. */
  window.gridmapRegister = function (map, layers, meta) {
    var grids = layers.grids;
    if (grids && grids.eachLayer) {
      // leaflet-search restores styles from feature.properties.style after a search.
      grids.eachLayer(function (layer) {
        if (layer.feature) { layer.feature.properties.style = baseStyle(layer); }
      });
    }
    window.gridmap = { map: map, layers: layers, meta: meta || {}, ready: false };
    map.whenReady(function () {
      // two frames: the first lays the panes out, the second has painted them
      requestAnimationFrame(function () {
        requestAnimationFrame(function () {
          window.gridmap.ready = true;
          window.gridmap.readyAt = performance.now();  // ms since navigation start
          document.documentElement.setAttribute("data-gridmap-ready", "1");
        });
      });
    });
  };

  /* Clicking a grid opens a popup with a link to its own page ({code} in the template). */
  window.gridmapGridLinks = function (template) {
    return function (feature, layer) {
      var code = feature.properties.code;
      var link = document.createElement("a");
      link.href = template.replace("{code}", encodeURIComponent(code));
      link.textContent = (feature.properties.name || code) + " →";
      var box = document.createElement("div");
      box.className = "gridmap-popup";
      var title = document.createElement("div");
      title.className = "gridmap-code";
      title.textContent = code;
      box.appendChild(title);
      box.appendChild(link);
      layer.bindPopup(box);
    };
  };

  /* Leaflet 1.8 dropped L.DomEvent.fakeStop, which Leaflet.VectorGrid 1.3 still calls
     on a click on its canvas tiles; stopping propagation is what it meant. */
  if (L.DomEvent && !L.DomEvent.fakeStop) { L.DomEvent.fakeStop = L.DomEvent.stopPropagation; }

  function escapeHtml(value) {
    var div = document.createElement("div");
    div.textContent = value === null || value === undefined ? "" : String(value);
    return div.innerHTML;
  }

  /* A layer of the app's vector tiles (app/maps/tiles.py): setup has pane, style,
     tooltip {property: label}, table {columns, rows: {code: [...]}, dicts: {column
     index: [labels]}} of what the tiles do not carry, fills {palette, codes: {code: index}} (a feature without an
     index is not drawn)
     and link (a URL template with {code}, opened from a popup on click). */
  window.gridmapVectorTiles = function (url, name, setup) {
    var hidden = [];
    var styles = {};
    styles[name] = function (properties) {
      if (!setup.fills) { return setup.style; }
      var at = setup.fills.codes[properties.code];
      return at === undefined ? hidden
        : L.extend({}, setup.style, { fillColor: setup.fills.palette[at] });
    };
    var interactive = !!(setup.tooltip || setup.link);
    var layer = L.vectorGrid.protobuf(url, {
      pane: setup.pane, vectorTileLayerStyles: styles, interactive: interactive,
      maxNativeZoom: 18, maxZoom: 22, minZoom: setup.minZoom || 0
    });
    function value(properties, key) {
      if (key in properties) { return properties[key]; }
      var row = setup.table && setup.table.rows[properties.code];
      var at = setup.table ? setup.table.columns.indexOf(key) : -1;
      if (!row || at < 0) { return null; }
      var labels = setup.table.dicts && setup.table.dicts[at];
      return labels && row[at] !== null ? labels[row[at]] : row[at];
    }
    if (setup.tooltip) {
      var tip = L.tooltip({ sticky: true, pane: "tooltipPane" });
      layer.on("mouseover mousemove", function (e) {
        var properties = (e.layer && e.layer.properties) || {};
        var rows = Object.keys(setup.tooltip).map(function (key) {
          return "<tr><th>" + escapeHtml(setup.tooltip[key]) + "</th><td>"
            + escapeHtml(value(properties, key)) + "</td></tr>";
        });
        tip.setLatLng(e.latlng).setContent("<table>" + rows.join("") + "</table>");
        if (!layer._map.hasLayer(tip)) { tip.addTo(layer._map); }
      });
      layer.on("mouseout remove", function () { tip.remove(); });
    }
    if (setup.link) {
      layer.on("click", function (e) {
        var code = (e.layer && e.layer.properties || {}).code;
        if (!code) { return; }
        var link = gridmapGridLinks(setup.link);
        var holder = { bindPopup: function (box) { L.popup().setLatLng(e.latlng)
          .setContent(box).openOn(layer._map); } };
        link({ properties: { code: code, name: value(e.layer.properties, "name") } }, holder);
      });
    }
    return layer;
  };

  /* Incidents of the clustered layer: [lat, lon, category index, source index, date]. */
  window.gridmapIncidentMarker = function (categories, sources, colours) {
    return function (row) {
      var category = categories[row[2]] || ["", ""];
      var marker = L.circleMarker([row[0], row[1]], {
        radius: 5, weight: 1, color: "#333", fillOpacity: 0.85,
        fillColor: colours[category[0].slice(0, 2)] || "#888"
      });
      marker.bindTooltip(category[0] + " " + category[1] + "<br>" + (sources[row[3]] || "")
        + " · " + row[4]);
      return marker;
    };
  };
})();
