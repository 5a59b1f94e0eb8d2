"""The map's micro-grids from vector tiles, in Chromium, on the small city preset.

`gridmap serve` runs over a database of this module holding the small city
(`gridmap demo --city --preset small`: two districts); every request that leaves
loopback is blocked and recorded by :class:`tests.browser.Visit`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.session import make_engine, upgrade
from tests import browser as browser_support
from tests.browser import Visit
from tests.helpers import TEST_DB, engine_url, fresh_embedded_database

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def city():
    from gis.demo.city import build_city

    return build_city(preset="small")


@pytest.fixture(scope="module")
def city_server(city, tmp_path_factory) -> Iterator[str]:
    """`gridmap serve` on the small city (a database of this module's, dropped next run)."""
    if not Path(browser_support.CHROMIUM).exists():
        pytest.skip(f"no Chromium at {browser_support.CHROMIUM}: apt-get install chromium")
    from app.services.demo import load_demo

    url = fresh_embedded_database(f"{TEST_DB}_tiles_city")
    upgrade(url)
    engine = make_engine(url)
    load_demo(engine, city, generation="city")
    database_url = engine_url(engine)
    engine.dispose()
    with browser_support.serving(
        database_url, tmp_path_factory.mktemp("serve") / "serve.log"
    ) as base:
        yield base


def _micro_paths(v: Visit) -> int:
    return v.count("micro_grids")


def _wait(v: Visit, expression: str, seconds: float = 20) -> None:
    """Poll ``expression`` until true (wait_for_function compiles it with ``new Function``,
    which the pages' Content-Security-Policy refuses, as it should)."""
    deadline = time.monotonic() + seconds
    while not v.page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true after {seconds} s: {expression}"
        v.page.wait_for_timeout(100)


def test_micro_grids_come_from_tiles_with_their_code_at_zoom_16(browser, city_server, city):
    v = Visit(browser, city_server + "/map")
    tiles: list[str] = []
    v.page.on("request", lambda r: tiles.append(r.url) if "/tiles/" in r.url else None)
    try:
        # not embedded: the page holds no micro-grid, and asks for none until shown
        assert _micro_paths(v) == 0
        assert not any("/tiles/micro_grids/" in u for u in tiles)
        v.toggle("micro-grids")
        v.page.evaluate("gridmap.map.setZoom(14, {animate: false})")  # drawn from zoom 13 on
        _wait(v, "document.querySelectorAll('.leaflet-micro_grids-pane path').length > 0")
        assert any("/tiles/micro_grids/14/" in u for u in tiles), tiles
        assert not any(f"/tiles/micro_grids/{z}/" in u for u in tiles for z in range(13)), tiles
        assert all(u.startswith(city_server) for u in tiles)

        micro = city.micro_grids.iloc[len(city.micro_grids) // 2]
        inside = micro.geometry.representative_point()
        # zoom in and wait until the layer has loaded every tile it shows at zoom 16
        v.page.evaluate(
            "([lat, lon]) => new Promise(done => {"
            " const layer = gridmap.layers.micro_grids;"
            " gridmap.map.setView([lat, lon], 16, {animate: false});"
            " if (layer.isLoading()) { layer.once('load', done); } else { done(); } })",
            [inside.y, inside.x],
        )
        assert v.page.evaluate("gridmap.map.getZoom()") == 16
        assert any("/tiles/micro_grids/16/" in u for u in tiles), tiles
        box = v.page.locator(".folium-map").bounding_box()
        assert box is not None
        x, y = v.page.evaluate(
            "([lat, lon]) => { const p = gridmap.map.latLngToContainerPoint([lat, lon]);"
            " return [p.x, p.y]; }",
            [inside.y, inside.x],
        )
        v.page.mouse.move(box["x"] + x - 3, box["y"] + y - 3)
        v.page.mouse.move(box["x"] + x, box["y"] + y)
        _wait(v, "document.querySelectorAll('.leaflet-tooltip').length > 0", 10)
        texts = v.page.locator(".leaflet-tooltip").all_inner_texts()
        assert any(str(micro["code"]) in t and "微网格" in t for t in texts), texts
    finally:
        v.close()  # no console error, no request beyond loopback
