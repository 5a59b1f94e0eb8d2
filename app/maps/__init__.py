"""Map pages (folium) of gridmap: the district map (/map), one grid's map, standalone HTML.

- :mod:`app.services.map_data` — the only database access: areas, staff, incidents → MapData
- :mod:`app.services.analysis` — cached calls into gis/ (coverage, counts, Gi*, heat)
- :mod:`app.maps.page` — the page builders (``build_map_page``, ``build_grid_page``)
- :mod:`app.maps.layers`, :mod:`app.maps.elements`, :mod:`app.maps.geometry` — their parts
- :mod:`app.maps.assets` — JS/CSS from locally installed, pinned packages (no CDN)
- :mod:`app.maps.basemap` — none, presets (Amap in GCJ-02) or a tile URL
- :mod:`app.maps.service` — per-app caching of data and pages
"""
