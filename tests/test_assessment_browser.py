"""The assessment page in a real browser: sign in, choose a period and a level, see the
table, the bar chart and the trend, and download the .xlsx, on a desk and a phone.

Debian's Chromium, headless, against `gridmap serve` over the demo database (the
``server`` and ``browser`` fixtures of conftest.py); no request leaves loopback.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from tests.browser import SCREENSHOTS
from tests.test_console_browser import _fits, _watched

pytestmark = [pytest.mark.db, pytest.mark.slow]

STREET = "411002003"


@pytest.fixture
def street_viewer(demo_engine) -> Iterator[tuple[str, str]]:
    """A viewer of one street: (name, password); deleted afterwards."""
    from app.services.auth import create_user

    name, password = f"assess-b-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    create_user(demo_engine, name, password, "viewer", area=STREET)
    yield name, password
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": name})


@pytest.mark.parametrize("size", [(1400, 900), (390, 844)], ids=["desk", "phone"])
def test_a_street_viewer_reads_the_assessment_and_downloads_it(
    browser, server, street_viewer, size, tmp_path
):
    name, password = street_viewer
    page, errors, remote = _watched(browser, *size)
    try:
        page.goto(f"{server}/console/assessment")
        page.wait_for_url(re.compile(r"/login\?next=/console/assessment"))
        page.fill("#username", name)
        page.fill("#password", password)
        page.click("#gm-login button[type=submit]")
        page.wait_for_url(f"{server}/console/assessment")
        assert page.locator("#gm-assessment-link").count() == 1  # in the console's bar

        page.fill("#gm-start", "2023-01-01")
        page.fill("#gm-end", "2023-12-31")
        page.select_option("#gm-level", "community")
        page.click("#gm-period button[type=submit]")
        page.wait_for_selector('#gm-assessment[data-level="community"][data-start="2023-01-01"]')

        rows = page.locator("#gm-figures tbody tr")
        codes = rows.evaluate_all("rs => rs.map(r => r.dataset.code)")
        assert len(codes) > 2 and codes[-1] == "合计 total"
        assert all(c.startswith(STREET) for c in codes[:-1])  # the street's communities only
        total = int(page.locator('#gm-figures tr.gm-total td[data-key="received"]').inner_text())
        assert total > 0
        bars = page.locator("#gm-bars rect[fill]")
        assert bars.count() >= len(codes) - 1  # a bar (or more) per community, and the legend
        assert page.locator("#gm-bars").is_visible() and page.locator("#gm-trend").is_visible()
        assert page.locator("#gm-trend polyline").count() == 2
        assert page.locator("#gm-trend circle").count() == 2 * 12
        assert _fits(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"assessment-{size[0]}.png"), full_page=True)

        with page.expect_download() as download:
            page.click("#gm-export")
        saved = tmp_path / "assessment.xlsx"
        download.value.save_as(saved)
        sheet = load_workbook(saved).active
        book = list(sheet.iter_rows(2, values_only=True))
        assert sorted(r[0] for r in book) == sorted(codes)  # the page's rows
        header = [c.value for c in sheet[1]]
        assert book[-1][header.index("受理总数 / received")] == total
        assert errors == [], errors
        assert remote == [], remote
    finally:
        page.close()
