"""Signing in through the page shows the incident layers; signing out takes them away.

Debian's Chromium, headless, against `gridmap serve` on loopback (the ``server`` and
``browser`` fixtures of conftest.py); a viewer account made with the service that
`gridmap users create` calls.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.browser import SCREENSHOTS

pytestmark = [pytest.mark.db, pytest.mark.slow]

#: The registry keys of the layers derived from incidents (see app/maps/page.py).
INCIDENT_LAYERS = {"choropleth", "hotspots", "outside", "clusters", "heat"}


@pytest.fixture
def account(demo_engine) -> Iterator[tuple[str, str]]:
    """A viewer of the whole district: (name, password); deleted afterwards."""
    from app.services.auth import create_user

    name, password = f"browser-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    create_user(demo_engine, name, password, "viewer")
    yield name, password
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": name})


def _layers(page) -> set[str]:
    page.wait_for_selector("html[data-gridmap-ready]", state="attached", timeout=120_000)
    return set(page.evaluate("Object.keys(gridmap.layers)"))


def test_signing_in_shows_the_incident_layers_and_signing_out_hides_them(browser, server, account):
    name, password = account
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server}/map")
        public = _layers(page)
        assert "grids" in public and not public & INCIDENT_LAYERS
        assert page.locator(".leaflet-hotspots-pane path").count() == 0

        page.goto(f"{server}/login?next=/map")
        page.fill("#username", name)
        page.fill("#password", password)
        page.click("#gm-login button[type=submit]")
        page.wait_for_url(f"{server}/map", timeout=120_000)
        signed = _layers(page)
        assert signed >= INCIDENT_LAYERS
        assert page.locator(".leaflet-hotspots-pane path").count() > 0  # drawn, on by default
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "map-signed-in.png"))

        page.goto(f"{server}/login")
        page.click("#gm-logout")
        page.wait_for_load_state()
        page.goto(f"{server}/map")
        after = _layers(page)
        assert "grids" in after and not after & INCIDENT_LAYERS
        assert page.locator(".leaflet-hotspots-pane path").count() == 0
        assert errors == []
    finally:
        page.close()
