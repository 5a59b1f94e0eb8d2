"""Signing in and out in a real browser: Debian's Chromium against `gridmap serve` on loopback.

The page must work offline: every request leaving 127.0.0.1 is blocked and recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, text

from app.services import auth
from tests.browser import LOOPBACK, SCREENSHOTS

pytestmark = [pytest.mark.db, pytest.mark.slow]

PASSWORD = "browser password 1"


@pytest.fixture
def account(demo_engine: Engine) -> Iterator[str]:
    """An operator on the demo database, deleted afterwards (its sessions go with it)."""
    name = f"browser-{uuid.uuid4().hex[:8]}"
    auth.create_user(demo_engine, name, PASSWORD, "operator", display_name="浏览器测试")
    yield name
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE username = :n"), {"n": name})


@pytest.fixture
def page(browser):
    remote: list[str] = []
    errors: list[str] = []

    def guard(route) -> None:
        parts = urlsplit(route.request.url)
        if parts.hostname not in LOOPBACK:
            remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    tab = browser.new_page()
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.route("**/*", guard)
    yield tab
    tab.close()
    assert remote == [] and errors == [], (remote, errors)


def session_cookie(browser) -> dict | None:
    found = [c for c in browser.cookies() if c["name"] == "gridmap_session"]
    return found[0] if found else None


def test_sign_in_and_out_through_the_page(browser, page, server, account):
    page.goto(f"{server}/login?next=/docs")
    assert page.locator("h1").inner_text().startswith("登录")
    assert page.locator("label[for=username]").inner_text().startswith("用户名")
    assert page.locator("label[for=password]").inner_text().startswith("密码")
    page.fill("#username", account)
    page.fill("#password", "not the password")
    page.click("#gm-login button[type=submit]")
    assert "Sign-in failed" in page.locator(".gm-error").inner_text()
    assert session_cookie(browser) is None

    page.fill("#password", PASSWORD)
    page.click("#gm-login button[type=submit]")
    page.wait_for_url(f"{server}/docs")
    cookie = session_cookie(browser)
    assert cookie is not None
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert "gridmap_session" not in page.evaluate("document.cookie")  # scripts cannot read it

    page.goto(f"{server}/login")
    indicator = page.locator("#gm-signed-in")
    assert "已登录" in indicator.inner_text() and "浏览器测试" in indicator.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "signed-in.png"))
    page.click("#gm-logout")
    page.wait_for_url(f"{server}/login")
    assert page.locator("#gm-signed-in").count() == 0
    assert session_cookie(browser) is None
