"""One incident through the whole closed loop in a real browser, by the people who work it,
each signed in through the page in a browser context of their own:

1. a grid worker, on a phone, reports it from the field (category, description, the
   phone's position, a photo);
2. the community's operator finds it in the queue, registers it, dispatches it to a staff
   member of the grid and escalates it to the street;
3. the street whistles (吹哨) a department; the department's user finds it in its queue and
   reports in (报到) by handling it;
4. the grid worker checks it on the spot (核查) and the street closes it (结案).

Then the incident page shows every step with who took it, the photo (refused to anonymous
requests), and the assessment page counts the incident. A second test acts on an old
version of the page and reads the refusal (409). Only the pages are used for the steps;
users and the department are seeded as the other console tests do.

Debian's Chromium, headless, against `gridmap serve` on loopback (the ``server`` fixture).
"""

from __future__ import annotations

import io
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gis.vocabulary import LOCAL_TZ
from tests import test_console, test_console_browser
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from tests.helpers import demo_point
from tests.test_console_browser import _fits, _watched

# the other console tests' fixtures: a department with its user and a street's operator,
# a description whose incidents (and photos) go afterwards, an incident reported by the API
department = test_console.department
people = test_console.people
description = test_console_browser.description
incident = test_console_browser.incident

pytestmark = [pytest.mark.db, pytest.mark.slow]

GRID = "411002003001003"  # street 411002003, community 411002003001
COMMUNITY = GRID[:12]
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def chromium(server):
    """Debian's Chromium as a browser that opens contexts: one per person, cookies apart
    (the ``browser`` fixture is a single persistent context)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def field_crew(demo_engine) -> Iterator[dict[str, tuple[str, str]]]:
    """The grid's worker (scope: the grid) and the community's operator: (name, password)."""
    from app.services.auth import create_user

    tag = uuid.uuid4().hex[:6]
    accounts = {}
    for part, area in (("worker", GRID), ("community", COMMUNITY)):
        name, password = f"loop-{part}-{tag}", secrets.token_urlsafe(12)
        create_user(demo_engine, name, password, "operator", area=area)
        accounts[part] = (name, password)
    yield accounts
    with demo_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM app_user WHERE username = ANY(:u)"),
            {"u": [name for name, _ in accounts.values()]},
        )


@pytest.fixture
def photo_file(tmp_path) -> Path:
    """A small real JPEG, as a phone's camera would send."""
    from PIL import Image

    picture = Image.new("RGB", (48, 32), (90, 140, 60))
    picture.paste((200, 200, 40), (10, 8, 30, 20))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    path = tmp_path / "现场.jpg"
    path.write_bytes(buffer.getvalue())
    return path


@dataclass
class Desk:
    """One person's browser context and page, signed in through the sign-in page."""

    name: str
    context: object
    page: object
    errors: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)

    def open(self, server: str, incident_id: int) -> None:
        self.page.goto(f"{server}/console/incidents/{incident_id}")
        self.page.wait_for_selector("#gm-incident")

    def act(self, action: str, note: str | None = None, *, then: str | None = None) -> None:
        """Submit the form of ``action`` (with a note) and wait for the page after it."""
        form = self.page.locator(f'form.gm-action[data-action="{action}"]')
        assert form.count() >= 1, (action, self.offered())
        form = form.first
        if note:
            form.locator("textarea[name=note]").fill(note)
        version = self.page.locator("#gm-incident").get_attribute("data-version")
        form.locator("button[type=submit]").click()
        self.page.wait_for_selector(f'#gm-incident:not([data-version="{version}"])')
        if then:
            assert self.page.locator("#gm-incident").get_attribute("data-status") == then

    def offered(self) -> list[str]:
        return self.page.locator("form.gm-action").evaluate_all(
            "forms => forms.map(f => f.dataset.action)"
        )

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.remote == [], self.remote


def signed_in(chromium, server: str, account: tuple[str, str], start: str, **options) -> Desk:
    """A context of its own, signed in through the page, on ``start``."""
    viewport = options.pop("viewport", DESK)
    context = chromium.new_context(viewport=viewport, locale="zh-CN", **options)
    page, errors, remote = _watched(context, viewport["width"], viewport["height"])
    name, password = account
    page.goto(f"{server}/login?next={start}")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#gm-login button[type=submit]")
    page.wait_for_url(f"{server}{start}")
    return Desk(name, context, page, errors, remote)


def assessment(desk: Desk, server: str, day: str) -> dict[str, int]:
    """The grid's row of the assessment page for ``day``, chosen through its form."""
    page = desk.page
    page.goto(f"{server}/console/assessment")
    page.fill("#gm-start", day)
    page.fill("#gm-end", day)
    page.select_option("#gm-level", "grid")
    page.click("#gm-period button[type=submit]")
    page.wait_for_selector(f'#gm-assessment[data-start="{day}"][data-level="grid"]')
    row = page.locator(f'#gm-figures tr[data-code="{GRID}"]')
    keys = ("received", "handled_grid", "passed_up")
    if row.count() == 0:  # nothing reported in the grid that day yet
        return dict.fromkeys(keys, 0)
    return {k: int(row.locator(f'td[data-key="{k}"]').inner_text()) for k in keys}


def received_in_sql(demo_engine, day: str) -> dict[str, int]:
    """The same figures counted directly: the grid's incidents reported that local day."""
    with demo_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) AS received,"
                " count(*) FILTER (WHERE i.handling_level = 'grid') AS handled_grid,"
                " count(*) FILTER (WHERE i.handling_level IN ('community', 'street'))"
                "   AS passed_up"
                " FROM incident i JOIN incident_assignment a ON a.incident_id = i.id"
                " JOIN generation g ON g.id = a.generation_id AND g.is_active"
                " WHERE a.grid_code = :grid"
                " AND (i.reported_at AT TIME ZONE 'Asia/Shanghai')::date = CAST(:day AS date)"
            ),
            {"grid": GRID, "day": day},
        ).one()
    return dict(row._mapping)


def test_one_incident_goes_round_the_closed_loop_through_the_pages(
    chromium, server, demo, demo_engine, field_crew, people, department, description, photo_file
):
    lon, lat = demo_point(demo, GRID)
    day = datetime.now(LOCAL_TZ).date().isoformat()
    street = signed_in(chromium, server, people["operator"], "/console")
    before = assessment(street, server, day)
    assert before == received_in_sql(demo_engine, day)

    # 1. the grid worker reports from the phone: category, description, position, photo
    worker = signed_in(
        chromium,
        server,
        field_crew["worker"],
        "/console/report",
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 6},
        permissions=["geolocation"],
    )
    page = worker.page
    category = page.locator("#category option", has_text="0401")
    page.select_option("#category", category.first.get_attribute("value"))
    page.fill("#description", description)
    page.tap("#gm-locate")
    page.wait_for_function("document.getElementById('lat').value !== ''")
    page.set_input_files("#photos", str(photo_file))
    page.tap("#gm-report button[type=submit]")
    page.wait_for_url(re.compile(r"/console/incidents/\d+$"))
    incident_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("#gm-incident").get_attribute("data-status") == "reported"

    # 2. the community finds it in its queue, registers, dispatches, escalates to the street
    community = signed_in(chromium, server, field_crew["community"], "/console")
    page = community.page
    page.select_option("#gm-filters select[name=status]", "reported")
    page.fill("#gm-filters input[name=area]", GRID)
    page.select_option("#gm-filters select[name=category]", "0401")
    page.click("#gm-filters button[type=submit]")
    page.wait_for_url(re.compile(r"/console\?.*status=reported"))
    row = page.locator(f'#gm-incidents tr[data-id="{incident_id}"]')
    assert row.count() == 1 and description[:20] in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_url(f"{server}/console/incidents/{incident_id}")
    community.act("register", "立案：社区受理", then="registered")
    handler = page.locator('form[data-action="dispatch"] select[name=handler]')
    staff = handler.locator('option[value^="staff:"]').first
    assignee = staff.inner_text().split(" · ")[0]
    handler.select_option(staff.get_attribute("value"))
    community.act("dispatch", "派网格员处置", then="dispatched")
    assert page.locator("#gm-handler").inner_text() == assignee
    to_street = page.locator('form[data-action="escalate"]:has(input[value="street"])')
    assert to_street.count() == 1, community.offered()
    version = page.locator("#gm-incident").get_attribute("data-version")
    to_street.locator("textarea[name=note]").fill("需街道协调")
    to_street.locator("button[type=submit]").click()
    page.wait_for_selector(f'#gm-incident:not([data-version="{version}"])')
    assert "街道 Street" in page.locator("#gm-status").inner_text()

    # 3. the street whistles the department; the department reports in by handling it
    street.open(server, incident_id)
    street.page.locator(
        f'form[data-action="whistle"] input[name=departments][value="{department}"]'
    ).check()
    street.act("whistle", "吹哨：请城管报到", then="dispatched")
    desk = signed_in(chromium, server, people["department"], "/console")
    row = desk.page.locator(f'#gm-incidents tr[data-id="{incident_id}"]')
    assert row.count() == 1, "the whistled incident is not in the department's queue"
    row.locator("a").first.click()
    desk.page.wait_for_url(f"{server}/console/incidents/{incident_id}")
    assert desk.offered() == ["report_in"], desk.offered()
    desk.act("report_in", "已清理完毕 cleared", then="handled")

    # 4. the worker checks it on the spot; the street closes it
    worker.open(server, incident_id)
    worker.act("verify", "现场核查通过", then="verified")
    assert _fits(worker.page)  # the whole history reads on the phone without scrolling sideways
    street.open(server, incident_id)
    street.act("close", "结案", then="closed")

    # the timeline: every step, with who took it
    steps = street.page.locator("#gm-timeline li")
    walked = steps.evaluate_all("items => items.map(li => [li.dataset.action, li.dataset.to])")
    assert walked == [
        ["", "reported"],
        ["advance", "registered"],
        ["advance", "dispatched"],
        ["escalate", "dispatched"],
        ["whistle", "dispatched"],
        ["report_in", "handled"],
        ["advance", "verified"],
        ["advance", "closed"],
    ], walked
    # each step names its actor, the report from the field included
    actors = [
        worker.name,
        community.name,
        community.name,
        community.name,
        street.name,
        desk.name,
        worker.name,
        street.name,
    ]
    for n, actor in enumerate(actors):
        assert steps.nth(n).locator(".gm-when").inner_text().endswith(actor), (n, actor)
    texts = steps.all_inner_texts()
    assert assignee in texts[2] and "街道 Street" in texts[3] and department in texts[4]
    assert "已清理完毕" in texts[5] and "现场核查通过" in texts[6]
    assert street.offered() == []

    # the photo: shown on the page, refused to an anonymous request
    shown = street.page.locator("#gm-photos img")
    assert shown.count() == 1
    street.page.wait_for_function("document.querySelector('#gm-photos img').naturalWidth === 48")
    src = server + shown.get_attribute("src")
    anonymous = httpx.get(src, follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    street.page.screenshot(path=str(SCREENSHOTS / "console-loop-closed.png"), full_page=True)

    # the assessment counts it: received, and passed up (escalated beyond the grid)
    after = assessment(street, server, day)
    assert after == received_in_sql(demo_engine, day)
    assert after["received"] == before["received"] + 1
    assert after["passed_up"] == before["passed_up"] + 1
    assert after["handled_grid"] == before["handled_grid"]

    for person in (worker, community, street, desk):
        person.clean()
        person.context.close()


def test_acting_on_an_old_page_says_who_acted_first(chromium, server, field_crew, people, incident):
    incident_id, _ = incident
    first = signed_in(chromium, server, field_crew["community"], "/console")
    second = signed_in(chromium, server, people["operator"], "/console")
    for desk in (first, second):
        desk.open(server, incident_id)
    first.act("register", "社区立案", then="registered")

    second.page.locator('form[data-action="register"] textarea[name=note]').fill("街道也立案")
    with second.page.expect_response(lambda r: r.request.method == "POST") as answer:
        second.page.locator('form[data-action="register"] button[type=submit]').click()
    assert answer.value.status == 409
    second.page.wait_for_selector("#gm-stale")
    stale = second.page.locator("#gm-stale").inner_text()
    assert "已被他人更新" in stale and "Changed by someone else" in stale
    by = second.page.locator("#gm-stale-by").inner_text()
    assert by.startswith(f"{first.name} · 立案 Registered · 20"), by  # who, what, when
    # the page under the notice is the incident as it is now, with what may be done next
    assert second.page.locator("#gm-incident").get_attribute("data-status") == "registered"
    assert "register" not in second.offered() and "dispatch" in second.offered()
    second.errors[:] = [e for e in second.errors if "409" not in e]  # the refused post itself
    for desk in (first, second):
        desk.clean()
        desk.context.close()
