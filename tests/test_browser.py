"""The map in a real browser: Debian's Chromium, headless, against `gridmap serve` on loopback.

Every request that leaves 127.0.0.1 is blocked and recorded: the page must work
on an intranet without internet. Screenshots land in var/screenshots/.
"""

from __future__ import annotations

import pytest

from tests.browser import SCREENSHOTS, Visit

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def signed_in(browser, demo_keys):
    """The incident layers are for callers only: this module's browser sends a viewer key
    (signing in through /login is tests/test_scope_browser.py)."""
    browser.set_extra_http_headers(demo_keys["viewer"])
    yield
    browser.set_extra_http_headers({})


@pytest.fixture
def visit(browser, server):
    opened: list[Visit] = []

    def open_(path: str) -> Visit:
        opened.append(Visit(browser, server + path))
        return opened[-1]

    yield open_
    for page in opened:
        page.close()


def test_the_map_draws_620_grids_offline_without_errors(visit):
    v = visit("/map")
    assert v.count("grids") == 620
    assert v.count("streets") == 8 and v.count("communities") == 89
    assert v.count("hotspots") > 0 and v.count("choropleth") == 0  # on / off by default
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "map.png"
    v.page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000


def test_toggling_layers_changes_what_is_drawn(visit, demo):
    v = visit("/map")
    v.toggle("choropleth")
    assert v.count("choropleth") == 620
    v.toggle("hot spots")
    assert v.count("hotspots") == 0
    v.toggle("micro-grids")  # from the vector tiles, from zoom 13 on (tests/test_tiles_browser.py)
    v.page.evaluate("gridmap.map.setZoom(14, {animate: false})")
    v.page.locator(".leaflet-micro_grids-pane path").first.wait_for(state="attached")
    v.toggle("incidents (")
    v.page.locator(".marker-cluster").first.wait_for(timeout=10_000)  # chunked loading


def test_a_tooltip_shows_the_grid_code_name_and_staff(visit, demo):
    v = visit("/map")
    grids = demo.grids
    metric = grids.to_crs(32649)  # UTM 49N: distances in metres
    code = grids.loc[metric.distance(metric.union_all().centroid).idxmin(), "code"]
    inside = grids.set_index("code").geometry[code].representative_point()
    box = v.page.locator(".folium-map").bounding_box()
    x, y = v.page.evaluate(
        "([lat, lon]) => { const p = gridmap.map.latLngToContainerPoint("
        "[lat, lon]); return [p.x, p.y]; }",
        [inside.y, inside.x],
    )
    v.page.mouse.move(box["x"] + x, box["y"] + y)
    tooltip = v.page.locator(".leaflet-tooltip")
    tooltip.wait_for(timeout=5000)
    text = tooltip.inner_text()
    assert code in text and grids.set_index("code").loc[code, "name"] in text
    assert "网格员" in text or "无 none" in text


def test_search_by_grid_code_zooms_to_the_grid(visit):
    v = visit("/map")
    before = v.page.evaluate("gridmap.map.getZoom()")
    search = v.page.locator(".leaflet-control-search input.search-input")
    search.press_sequentially("411002003001003")  # key by key: the control listens to keys
    v.page.locator(".leaflet-control-search .search-tip").first.wait_for(timeout=5000)
    search.press("Enter")
    v.page.wait_for_function(f"gridmap.map.getZoom() > {before}", timeout=10_000)


def test_a_grid_page_shows_its_micro_grids_and_staff(visit, demo):
    code = "411002003001003"
    v = visit(f"/map/grids/{code}")
    own = (demo.micro_grids["parent_code"] == code).sum()
    assert v.count("micro_grids") == own
    assert v.count("focus") == 1
    panel = v.page.locator(".gridmap-info").inner_text()
    staff = demo.staff[demo.staff["area_code"] == code]
    assert code in panel and all(name in panel for name in staff["name"])
    v.page.screenshot(path=str(SCREENSHOTS / "grid.png"))
