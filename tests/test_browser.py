"""The map in a real browser: Debian's Chromium, headless, against `gridmap serve` on loopback.

Every request that leaves 127.0.0.1 is blocked and recorded: the page must work
on an intranet without internet. Screenshots land in var/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.config import PROJECT_ROOT

pytestmark = [pytest.mark.db, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_command(port: int) -> list[str]:
    """``gridmap serve`` with this interpreter (the console script may not be on PATH)."""
    cli = "from app.cli import main; main()"
    return [sys.executable, "-c", cli, "serve", "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="module")
def server(demo_engine, tmp_path_factory) -> Iterator[str]:
    """`gridmap serve` on a free loopback port over the demo database; its base URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    port = _free_port()
    url = demo_engine.url.render_as_string(hide_password=False)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_INDEX_REFRESH_SECONDS": "0"}
    with log.open("w") as out:
        process = subprocess.Popen(
            _serve_command(port), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/map", process, log)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gridmap serve exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=120).status_code == 200:  # waits for the warm-up
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready after {seconds} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's Chromium with a fresh profile, driven by Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        yield context
        context.close()


class Visit:
    """One page, with its console errors and every request that tried to leave loopback."""

    def __init__(self, browser, url: str):
        self.errors: list[str] = []
        self.remote: list[str] = []
        self.page = browser.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._guard)
        self.page.goto(url)
        self.page.wait_for_selector("html[data-gridmap-ready]", state="attached", timeout=60_000)

    def _guard(self, route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK:
            self.remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def count(self, pane: str) -> int:
        return self.page.locator(f".leaflet-{pane}-pane path").count()

    def toggle(self, label: str) -> None:
        self.page.locator(".leaflet-control-layers-overlays label", has_text=label).locator(
            "input"
        ).click()
        self.page.wait_for_timeout(300)

    def close(self) -> None:
        assert self.errors == [], self.errors
        assert self.remote == [], self.remote
        self.page.close()


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
    v.toggle("micro-grids")  # built in the browser only now
    assert v.count("micro_grids") == len(demo.micro_grids)
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
