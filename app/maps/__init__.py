"""Map pages (folium) of gridmap: the district map (/map), one grid's map, standalone HTML.

The maps draw and read no database: their data is a
:class:`~app.services.map_data.MapData` (from :mod:`app.services.map_data`) and the
results of :mod:`app.services.analysis` (coverage, counts, Gi*, heat).

- :mod:`app.maps.page` — the page builders (``build_map_page``, ``build_grid_page``)
- :mod:`app.maps.layers`, :mod:`app.maps.elements`, :mod:`app.maps.geometry` — their parts
- :mod:`app.maps.assets` — JS/CSS from locally installed, pinned packages (no CDN)
- :mod:`app.maps.basemap` — none, presets (Amap in GCJ-02) or a tile URL
- :mod:`app.maps.page_cache` — a running app's built pages, per data and parameters
"""
