"""An operator works one incident in the console with a real browser: signs in through the
page, opens the queue, opens the incident, registers and dispatches it; the timeline shows
both steps. On a desk-sized and a phone-sized window; no console errors, no request
leaving loopback.

Debian's Chromium, headless, against `gridmap serve` on loopback (the ``server`` and
``browser`` fixtures of conftest.py).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from tests.browser import LOOPBACK, SCREENSHOTS
from tests.helpers import PNG_1X1 as PNG
from tests.helpers import demo_point

pytestmark = [pytest.mark.db, pytest.mark.slow]

GRID = "411002003001003"


@pytest.fixture
def operator(demo_engine) -> Iterator[tuple[str, str]]:
    """An operator of the grid's street: (name, password); deleted afterwards."""
    from app.services.auth import create_user

    name, password = f"console-b-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    create_user(demo_engine, name, password, "operator", area=GRID[:9])
    yield name, password
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": name})


@pytest.fixture
def incident(demo_client, demo_keys, demo, incident_source) -> tuple[int, str]:
    """A reported incident in the grid: (id, its source)."""
    lon, lat = demo_point(demo, GRID)
    made = demo_client.post(
        "/incidents",
        json={
            "source": incident_source,
            "external_id": "browser-1",
            "category": "0401",
            "lon": lon,
            "lat": lat,
            "description": "道路积水 / standing water",
        },
        headers=demo_keys["operator"],
    )
    assert made.status_code == 201, made.json()
    return made.json()["id"], incident_source


def _watched(browser, width: int, height: int):
    """A page that records console errors and refuses every request leaving loopback."""
    browser.clear_cookies()  # the context is the module's: start signed out
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": height})
    errors: list[str] = []
    remote: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def guard(route) -> None:
        host = urlsplit(route.request.url).hostname
        if host not in LOOPBACK:
            remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", guard)
    return page, errors, remote


def _fits(page) -> bool:
    """Nothing wider than the window: readable without scrolling sideways."""
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className + '#' +"
        " e.id + ' ' + Math.round(e.getBoundingClientRect().right))"
    )
    assert wide == [], wide
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("size", [(1400, 900), (390, 844)], ids=["desk", "phone"])
def test_an_operator_registers_and_dispatches_from_the_console(
    browser, server, operator, incident, size
):
    incident_id, source = incident
    name, password = operator
    page, errors, remote = _watched(browser, *size)
    try:
        page.goto(f"{server}/console?source={source}")
        page.wait_for_url(re.compile(r"/login\?next=/console"))  # anonymous: sign in first
        page.fill("#username", name)
        page.fill("#password", password)
        page.click("#gm-login button[type=submit]")
        page.wait_for_url(f"{server}/console?source={source}")
        row = page.locator(f'#gm-incidents tr[data-id="{incident_id}"]')
        assert row.count() == 1
        assert _fits(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"console-queue-{size[0]}.png"), full_page=True)

        row.locator("a").first.click()
        page.wait_for_url(f"{server}/console/incidents/{incident_id}")
        assert page.locator("#gm-point").count() == 1  # the sketch of the point in its grid
        assert page.locator("form.gm-action").evaluate_all(
            "forms => forms.map(f => f.dataset.action)"
        ) == ["register"]

        page.fill('form[data-action="register"] textarea[name=note]', "立案：道路积水")
        page.click('form[data-action="register"] button[type=submit]')
        page.wait_for_selector('#gm-incident[data-status="registered"]')

        dispatch = page.locator('form[data-action="dispatch"]')
        staff = dispatch.locator('select[name=handler] option[value^="staff:"]').first
        worker = staff.inner_text().split(" · ")[0]
        dispatch.locator("select[name=handler]").select_option(staff.get_attribute("value"))
        dispatch.locator("button[type=submit]").click()
        page.wait_for_selector('#gm-incident[data-status="dispatched"]')

        steps = page.locator("#gm-timeline li")
        assert steps.count() == 3  # reported, registered, dispatched
        registered, dispatched = steps.nth(1).inner_text(), steps.nth(2).inner_text()
        assert "立案 Registered" in registered and name in registered
        assert "道路积水" in registered
        assert "派遣 Dispatched" in dispatched and worker in dispatched and name in dispatched
        assert page.locator("#gm-handler").inner_text() == worker
        assert _fits(page)
        page.screenshot(path=str(SCREENSHOTS / f"console-incident-{size[0]}.png"), full_page=True)
        assert errors == [], errors
        assert remote == [], remote
    finally:
        page.close()


@pytest.fixture
def description(demo_engine) -> Iterator[str]:
    """A description of the test's own; its incidents and their photos go afterwards."""
    import shutil

    from app.config import Settings

    mark = f"浏览器上报 {uuid.uuid4().hex[:10]}"
    yield mark
    with demo_engine.begin() as conn:
        ids = conn.execute(
            text("DELETE FROM incident WHERE description = :d RETURNING id"), {"d": mark}
        ).scalars()
        for incident_id in ids:
            shutil.rmtree(Settings().data_dir / "photos" / str(incident_id), ignore_errors=True)


def test_a_grid_worker_reports_from_a_phone_with_the_position_and_a_photo(
    browser, server, operator, demo, description
):
    name, password = operator
    lon, lat = demo_point(demo, GRID)
    browser.grant_permissions(["geolocation"], origin=server)
    browser.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": 8})
    page, errors, remote = _watched(browser, 390, 844)
    try:
        page.goto(f"{server}/login?next=/console/report")
        page.fill("#username", name)
        page.fill("#password", password)
        page.click("#gm-login button[type=submit]")
        page.wait_for_url(f"{server}/console/report")
        page.select_option("#category", "0401")
        page.fill("#description", description)
        page.click("#gm-locate")
        page.wait_for_function("document.getElementById('lat').value !== ''")
        assert abs(float(page.input_value("#lon")) - lon) < 1e-5
        page.set_input_files(
            "#photos", files=[{"name": "site.png", "mimeType": "image/png", "buffer": PNG}]
        )
        assert _fits(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "console-report-390.png"), full_page=True)
        page.click("#gm-report button[type=submit]")
        page.wait_for_url(re.compile(r"/console/incidents/\d+$"))
        assert (
            GRID[:12] in page.locator("#gm-details").inner_text()
            or page.locator("#gm-details").inner_text().count("›") == 2
        )  # street › community › grid
        photo = page.locator("#gm-photos img")
        assert photo.count() == 1
        page.wait_for_function("document.querySelector('#gm-photos img').naturalWidth === 1")
        assert page.locator("form.gm-action").evaluate_all(
            "forms => forms.map(f => f.dataset.action)"
        ) == ["register"]
        assert errors == [], errors
        assert remote == [], remote
    finally:
        page.close()
        browser.clear_permissions()
