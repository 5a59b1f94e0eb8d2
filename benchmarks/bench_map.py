"""Size, build time and browser render time of the demo district map, against a plain folium page.

Run it from the repository root::

    python benchmarks/bench_map.py                 # the demo district built in memory
    python benchmarks/bench_map.py --database      # the database gridmap uses (`gridmap demo`)
    python benchmarks/bench_map.py --repeat 5 --no-browser

Targets of the issue, for the demo map (620 grids, 5,490 micro-grids, 50,000 incidents
over 2023): HTML ≤ 3 MB uncompressed, server build ≤ 1 s, rendered in headless
Chromium ≤ 2 s.

What is measured:

* **html** — bytes of the served page (assets referenced by URL) and of the standalone
  file ``gridmap map -o`` writes (assets inlined).
* **build** — ``cold``: everything from nothing — data loaded (from the database with
  ``--database``), coverage of all levels, Gi*, heat, page; once per change of the
  data, done by ``gridmap serve`` in the background at start-up. ``new selection``:
  a /map request with parameters not seen before (counts, Gi*, heat, page on loaded
  data). ``page only``: analyses cached, the page rendered. ``cached``: what a repeated
  /map costs (PageCache's LRU).
* **render** — Debian's Chromium, headless, fresh profile, page and assets from an HTTP
  server on loopback: milliseconds from navigation start to the load event plus two
  animation frames (every visible layer painted), median of ``--repeat`` loads.

The peer is the folium page one would write first (what ``GeoDataFrame.explore``
produces, layer for layer): ``folium.GeoJson`` of every level at full precision with
``GeoJsonTooltip``, a style function for the choropleth, FastMarkerCluster and HeatMap
with the same points, from the same analysis results, its assets served by the same
local server (so it measures the data, not a CDN). Ratios are gridmap over the peer.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import folium
import numpy as np
from folium.plugins import FastMarkerCluster, HeatMap

from app.config import MapSettings
from app.maps.assets import MEDIA_TYPES, AssetStore, localize
from app.maps.page import PageOptions, build_map_page
from app.maps.page_cache import PageCache
from app.services import analysis
from app.services.analysis import Selection
from app.services.map_data import MapData

CHROMIUM = "/usr/bin/chromium"
PREFIX = "/static/vendor/"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


# -- data ------------------------------------------------------------------------------
def load(database: bool) -> tuple[Callable[[], MapData], str]:
    """A loader of fresh (uncached) map data, and what it reads."""
    if database:
        from app.config import Settings
        from app.db.session import make_engine
        from app.services.map_data import load_map_data

        engine = make_engine(Settings().sqlalchemy_url())

        def from_db() -> MapData:
            with engine.connect() as conn:
                return load_map_data(conn)

        return from_db, "database"
    from gis.demo import build_demo

    demo = build_demo()
    return lambda: MapData.from_demo(demo), "demo in memory"


# -- gridmap ---------------------------------------------------------------------------
def bench_gridmap(loader: Callable[[], MapData], store: AssetStore, repeat: int) -> dict:
    options = PageOptions(asset_prefix=PREFIX, grid_url="/map/grids/{code}", map_url="/map")
    cold, (data, html) = timed(lambda: _cold(loader, options, store))
    windows = [
        Selection.parse(f"2023-{m:02d}-01", f"2023-{m + 3:02d}-01") for m in range(1, 1 + repeat)
    ]
    fresh = [
        timed(lambda w=w: build_map_page(data, w, "count", options, store))[0] for w in windows
    ]
    again = [
        timed(lambda: build_map_page(data, Selection(), "count", options, store))[0]
        for _ in range(repeat)
    ]
    # The data as a running app's MapDataCache holds it, loaded and current.
    loaded = SimpleNamespace(data=lambda generation=None: data, version=lambda: data.fingerprint)
    service = PageCache(loaded, MapSettings(warm_on_startup=False), store)  # type: ignore[arg-type]
    service.page("k", lambda d: html)
    hits = [timed(lambda: service.page("k", lambda d: html))[0] for _ in range(repeat)]
    inline = build_map_page(data, Selection(), "count", PageOptions(), store)
    return {
        "data": data,
        "html": html,
        "bytes": len(html.encode()),
        "inline_bytes": len(inline.encode()),
        "cold": cold,
        "new_selection": statistics.median(fresh),
        "page_only": statistics.median(again),
        "cached": statistics.median(hits),
    }


def _cold(loader, options, store) -> tuple[MapData, str]:
    data = loader()
    return data, build_map_page(data, Selection(), "count", options, store)


# -- the peer --------------------------------------------------------------------------
def peer_page(data: MapData, store: AssetStore) -> str:
    """The straightforward folium page of the same layers and results."""
    stats = analysis.grid_stats(data, Selection(), 999)
    report = analysis.coverage(data)
    heat = analysis.heat_points(data, Selection())
    west, south, east, north = data.all_areas().total_bounds
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=13, tiles=None)
    m.options["max_zoom"] = 19
    for level in ("street", "community"):
        folium.GeoJson(
            data.level(level)[["code", "name", "geometry"]],
            name=level,
            style_function=lambda f: {"fill": False, "color": "#222"},
        ).add_to(m)
    classes = np.quantile(stats["count"], [0.2, 0.4, 0.6, 0.8])
    palette = ["#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"]
    colour = dict(
        zip(
            stats["code"],
            [palette[int(np.searchsorted(classes, v))] for v in stats["count"]],
            strict=True,
        )
    )
    grids = stats[["code", "name", "count", "rate_per_1000", "bin", "geometry"]]
    folium.GeoJson(
        grids,
        name="grids",
        tooltip=folium.GeoJsonTooltip(["code", "name", "count", "rate_per_1000", "bin"]),
        style_function=lambda f: {
            "fillColor": colour[f["properties"]["code"]],
            "color": "#555",
            "weight": 0.8,
            "fillOpacity": 0.6,
        },
    ).add_to(m)
    folium.GeoJson(
        data.level("micro_grid")[["code", "name", "households", "geometry"]],
        name="micro-grids",
        show=False,
        tooltip=folium.GeoJsonTooltip(["code", "name", "households"]),
    ).add_to(m)
    defects = report.defects[report.defects["type"] != "outside_incident"]
    if len(defects):
        folium.GeoJson(defects[["type", "detail", "geometry"]], name="defects").add_to(m)
    chosen = analysis.select_incidents(data, Selection())
    sample = chosen.sample(min(5000, len(chosen)), random_state=0)
    FastMarkerCluster(
        sample[["lat", "lon"]].to_numpy().tolist(), name="incidents", show=False
    ).add_to(m)
    HeatMap(heat[["lat", "lon", "weight"]].to_numpy().tolist(), name="heat", show=False).add_to(m)
    folium.LayerControl().add_to(m)
    localize(m.get_root(), store, PREFIX)
    return m.get_root().render()


# -- the browser -----------------------------------------------------------------------
class _Pages(BaseHTTPRequestHandler):
    pages: dict[str, bytes] = {}
    store: AssetStore

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path in self.pages:
            self._send(self.pages[self.path], "text/html; charset=utf-8")
            return
        found = (
            self.store.file(self.path.removeprefix(PREFIX))
            if self.path.startswith(PREFIX)
            else None
        )
        if found is None:
            self.send_error(404)
            return
        self._send(found.read_bytes(), MEDIA_TYPES[found.suffix])

    def _send(self, body: bytes, media: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


_DRAWN = """window.addEventListener("load", () => requestAnimationFrame(() =>
    requestAnimationFrame(() => { window.__drawnAt = performance.now(); })));"""


def bench_browser(pages: dict[str, str], store: AssetStore, repeat: int) -> dict[str, float]:
    """Median ms from navigation start to load + two frames, per page path."""
    from playwright.sync_api import sync_playwright

    _Pages.pages = {path: html.encode() for path, html in pages.items()}
    _Pages.store = store
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    results: dict[str, list[float]] = {path: [] for path in pages}
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
                viewport={"width": 1400, "height": 900},
            )
            context.add_init_script(_DRAWN)
            for _ in range(repeat + 1):  # the first load warms the HTTP cache of the assets
                for path in pages:
                    page = context.new_page()
                    page.goto(base + path, timeout=120_000)
                    page.wait_for_function("window.__drawnAt !== undefined", timeout=120_000)
                    results[path].append(page.evaluate("window.__drawnAt"))
                    page.close()
            context.close()
    finally:
        server.shutdown()
    return {path: statistics.median(times[1:]) for path, times in results.items()}


# -- report ----------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database", action="store_true", help="Read the demo from the database gridmap uses."
    )
    parser.add_argument("--repeat", type=int, default=3, help="Runs per measurement.")
    parser.add_argument("--no-browser", action="store_true", help="Skip the Chromium runs.")
    args = parser.parse_args()

    store = AssetStore.configured()
    loader, source = load(args.database)
    ours = bench_gridmap(loader, store, args.repeat)
    data = ours["data"]
    peer_time, peer = timed(lambda: peer_page(data, store))
    peer_bytes = len(peer.encode())
    print(
        f"demo map from the {source}: {len(data.level('grid'))} grids, "
        f"{len(data.level('micro_grid')):,} micro-grids, {len(data.incidents):,} incidents"
    )
    print(
        f"html, served page       {ours['bytes'] / 1e6:6.2f} MB   (target <= 3 MB)   "
        f"peer {peer_bytes / 1e6:6.2f} MB   ratio {ours['bytes'] / peer_bytes:.2f}"
    )
    print(f"html, standalone file   {ours['inline_bytes'] / 1e6:6.2f} MB   (assets inlined)")
    print(
        f"build, cold             {ours['cold']:6.2f} s    (load, coverage, Gi*, page; once "
        "per data change, at start-up)"
    )
    print(
        f"build, new selection    {ours['new_selection']:6.2f} s    (target <= 1 s)   "
        f"peer {peer_time:6.2f} s   ratio {ours['new_selection'] / peer_time:.2f}"
    )
    print(f"build, page only        {ours['page_only']:6.2f} s    (analyses cached)")
    print(f"build, cached page      {ours['cached'] * 1e3:6.2f} ms")
    if args.no_browser or not Path(CHROMIUM).exists():
        return
    drawn = bench_browser({"/map": ours["html"], "/peer": peer}, store, args.repeat)
    print(
        f"render in Chromium      {drawn['/map'] / 1e3:6.2f} s    (target <= 2 s)   "
        f"peer {drawn['/peer'] / 1e3:6.2f} s   ratio {drawn['/map'] / drawn['/peer']:.2f}"
    )


if __name__ == "__main__":
    main()
