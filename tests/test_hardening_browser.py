"""Issue 15: /docs and /redoc render in headless Chromium with every non-loopback request
blocked (an intranet without internet), under the app's Content-Security-Policy.

The server and browser are those of ``tests/test_browser.py``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser import LOOPBACK

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _open(browser, url: str, ready: str) -> tuple[list[str], list[str], object]:
    errors: list[str] = []
    remote: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def guard(route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK:
            remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", guard)
    page.goto(url)
    page.wait_for_selector(ready, timeout=60_000)
    return errors, remote, page


def test_swagger_ui_renders_offline(browser, server):
    errors, remote, page = _open(browser, f"{server}/docs", ".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() > 20  # every operation listed
    assert page.locator(".swagger-ui .title").first.inner_text().startswith("gridmap")
    page.close()
    assert remote == [] and errors == [], (remote, errors)


def test_redoc_renders_offline(browser, server):
    errors, remote, page = _open(browser, f"{server}/redoc", "h1")
    assert "gridmap" in page.locator("h1").first.inner_text()
    page.close()
    assert remote == [], remote
    # ReDoc's footer logo lives on its CDN: the page's policy refuses it before any request.
    assert [e for e in errors if "cdn.redoc.ly" not in e] == [], errors
