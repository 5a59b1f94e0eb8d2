"""The operations console (/console): sign-in, scope, CSRF, the actions offered, the queue's
filters and a stale version, through the pages (TestClient on the demo database).

Users are made with the service `gridmap users create` calls and deleted afterwards; the
incidents belong to a source of the test's own (``incident_source``).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db import departments as department_rows
from tests.helpers import PNG_1X1 as PNG
from tests.helpers import demo_point

pytestmark = pytest.mark.db

GRID = "411002003001003"  # street 411002003, community 411002003001
OTHER_STREET = "411002001"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def department(demo_engine) -> Iterator[str]:
    """A department of this module's own, deleted afterwards with its whistles."""
    code = f"CG{uuid.uuid4().hex[:6].upper()}"
    with demo_engine.begin() as conn:
        department_rows.upsert_departments(conn, [{"code": code, "name": "区城市管理局"}])
    yield code
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM incident_whistle WHERE department_code = :c"), {"c": code})
        conn.execute(
            text("UPDATE incident SET department_code = NULL WHERE department_code = :c"),
            {"c": code},
        )
        conn.execute(text("DELETE FROM department WHERE code = :c"), {"c": code})


@pytest.fixture(scope="module")
def people(demo_engine, department) -> Iterator[dict[str, tuple[str, str]]]:
    """Accounts by part they play: (name, password); deleted afterwards."""
    from app.services.auth import create_user

    tag = uuid.uuid4().hex[:6]
    made = {
        "operator": ("operator", GRID[:9], None),
        "outsider": ("operator", OTHER_STREET, None),
        "viewer": ("viewer", GRID[:9], None),
        "department": ("operator", None, department),
    }
    accounts = {}
    for part, (role, area, dept) in made.items():
        name, password = f"console-{part}-{tag}", secrets.token_urlsafe(12)
        create_user(demo_engine, name, password, role, area=area, department=dept)
        accounts[part] = (name, password)
    yield accounts
    with demo_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM app_user WHERE username = ANY(:u)"),
            {"u": [name for name, _ in accounts.values()]},
        )


def signed_in(demo_client, account: tuple[str, str]) -> TestClient:
    """A browser of its own on the running demo app, signed in through the form."""
    browser = TestClient(demo_client.app, follow_redirects=False)
    form = browser.get("/login")
    token = _CSRF.search(form.text).group(1)
    name, password = account
    done = browser.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": "/console"},
    )
    assert done.status_code == 303, done.text
    return browser


def report(demo_client, demo_keys, demo, source: str, external_id: str = "c-1") -> int:
    lon, lat = demo_point(demo, GRID)
    made = demo_client.post(
        "/incidents",
        json={
            "source": source,
            "external_id": external_id,
            "category": "0401",
            "lon": lon,
            "lat": lat,
            "description": "占道经营",
        },
        headers=demo_keys["operator"],
    )
    assert made.status_code == 201, made.json()
    return made.json()["id"]


def actions(page_html: str) -> list[str]:
    return re.findall(r'class="gm-action" data-action="([a-z_]+)"', page_html)


def version(page_html: str) -> int:
    return int(re.search(r'data-version="(\d+)"', page_html).group(1))


def post(browser: TestClient, incident_id: int, **form) -> object:
    page = browser.get(f"/console/incidents/{incident_id}").text
    body = {"csrf_token": _CSRF.search(page).group(1), "version": version(page), **form}
    return browser.post(f"/console/incidents/{incident_id}", data=body)


# -- who may open the pages ----------------------------------------------------------------
def test_anonymous_visitors_are_sent_to_sign_in(demo_client):
    anonymous = TestClient(demo_client.app, follow_redirects=False)
    queue = anonymous.get("/console?status=reported")
    assert queue.status_code == 303
    assert queue.headers["location"] == "/login?next=/console%3Fstatus%3Dreported"
    one = anonymous.get("/console/incidents/1")
    assert one.status_code == 303 and one.headers["location"] == "/login?next=/console/incidents/1"
    posted = anonymous.post("/console/incidents/1", data={"status": "registered"})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/login?next=")


def test_another_areas_incident_is_refused(demo_client, demo_keys, demo, people, incident_source):
    incident = report(demo_client, demo_keys, demo, incident_source)
    outsider = signed_in(demo_client, people["outsider"])
    page = outsider.get(f"/console/incidents/{incident}")
    assert page.status_code == 403 and "不在您的辖区" in page.text
    assert outsider.get("/console/incidents/999999999").status_code == 404
    queue = outsider.get(f"/console?source={incident_source}")
    assert queue.status_code == 200 and f'data-id="{incident}"' not in queue.text
    assert outsider.get(f"/console?area={GRID}").status_code == 403  # another street's grid
    mine = signed_in(demo_client, people["operator"]).get(f"/console?source={incident_source}")
    assert f'data-id="{incident}"' in mine.text


def test_a_post_without_the_csrf_token_is_refused(
    demo_client, demo_keys, demo, people, incident_source
):
    incident = report(demo_client, demo_keys, demo, incident_source)
    operator = signed_in(demo_client, people["operator"])
    page = operator.get(f"/console/incidents/{incident}").text
    refused = operator.post(
        f"/console/incidents/{incident}", data={"status": "registered", "version": version(page)}
    )
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = post(operator, incident, status="registered", csrf_token="x" * 43)
    assert wrong.status_code == 403
    assert version(operator.get(f"/console/incidents/{incident}").text) == version(page)


# -- the actions offered -------------------------------------------------------------------
def test_the_actions_follow_the_loop_and_the_timeline_shows_each_step(
    demo_client, demo_keys, demo, demo_engine, people, incident_source
):
    incident = report(demo_client, demo_keys, demo, incident_source)
    operator = signed_in(demo_client, people["operator"])
    viewer = signed_in(demo_client, people["viewer"])
    assert actions(operator.get(f"/console/incidents/{incident}").text) == ["register"]
    viewer_page = viewer.get(f"/console/incidents/{incident}").text
    assert actions(viewer_page) == [] and 'id="gm-no-actions"' in viewer_page
    refused = post(viewer, incident, status="registered")
    assert refused.status_code == 403 and "operator role" in refused.text

    assert post(operator, incident, status="registered", note="立案").status_code == 303
    page = operator.get(f"/console/incidents/{incident}").text
    assert actions(page) == ["dispatch", "escalate", "escalate"]
    staff_id = int(re.search(r'value="staff:(\d+)"', page).group(1))
    with demo_engine.connect() as conn:
        serves = conn.execute(
            text("SELECT area_code FROM staff WHERE id = :i"), {"i": staff_id}
        ).scalar_one()
    assert serves.startswith(GRID)  # only the grid's own staff are offered

    done = post(operator, incident, status="dispatched", handler=f"staff:{staff_id}")
    assert done.status_code == 303 and done.headers["location"].endswith("#gm-timeline")
    page = operator.get(f"/console/incidents/{incident}").text
    assert actions(page) == ["handle", "escalate", "escalate", "reassign"]
    timeline = page.split('id="gm-timeline"')[1]
    name = people["operator"][0]
    assert timeline.count(name) == 2 and "立案" in timeline and "派给" in timeline
    api = demo_client.get(f"/incidents/{incident}", headers=demo_keys["viewer"]).json()
    assert [h["by"] for h in api["history"][1:]] == [name, name]
    assert api["assignee"]["staff_id"] == staff_id

    assert post(operator, incident, status="handled", note="已清理").status_code == 303
    assert actions(operator.get(f"/console/incidents/{incident}").text) == ["verify", "send_back"]
    assert post(operator, incident, status="verified").status_code == 303
    assert actions(operator.get(f"/console/incidents/{incident}").text) == ["close"]
    assert post(operator, incident, status="closed").status_code == 303
    assert actions(operator.get(f"/console/incidents/{incident}").text) == []


def test_a_department_user_reports_in_for_its_own_department(
    demo_client, demo_keys, demo, people, department, incident_source
):
    incident = report(demo_client, demo_keys, demo, incident_source)
    operator = signed_in(demo_client, people["operator"])
    post(operator, incident, status="registered", handling_level="street")
    page = operator.get(f"/console/incidents/{incident}").text
    assert "whistle" in actions(page)
    whistled = post(operator, incident, action="whistle", departments=[department])
    assert whistled.status_code == 303
    desk = signed_in(demo_client, people["department"])
    queue = desk.get(f"/console?department={department}&source={incident_source}")
    assert f'data-id="{incident}"' in queue.text
    page = desk.get(f"/console/incidents/{incident}").text
    assert "report_in" in actions(page) and f'name="department" value="{department}"' in page
    assert post(desk, incident, status="handled", department=department).status_code == 303
    doc = demo_client.get(f"/incidents/{incident}", headers=demo_keys["viewer"]).json()
    assert doc["status"] == "handled" and doc["history"][-1]["action"] == "report_in"


def test_a_stale_version_says_what_changed(demo_client, demo_keys, demo, people, incident_source):
    incident = report(demo_client, demo_keys, demo, incident_source)
    operator = signed_in(demo_client, people["operator"])
    page = operator.get(f"/console/incidents/{incident}").text
    token, seen = _CSRF.search(page).group(1), version(page)
    moved = demo_client.post(
        f"/incidents/{incident}/transitions",
        json={"status": "registered", "version": seen},
        headers=demo_keys["operator"],
    )
    assert moved.status_code == 200
    late = operator.post(
        f"/console/incidents/{incident}",
        data={"csrf_token": token, "version": seen, "status": "registered"},
    )
    assert late.status_code == 409
    assert "已被他人更新" in late.text and "Changed by someone else" in late.text
    assert 'id="gm-status">立案 Registered' in late.text  # the page shows the incident now
    assert version(late.text) == seen + 1 and actions(late.text)[0] == "dispatch"


def test_illegal_or_malformed_forms_are_pages_not_500(
    demo_client, demo_keys, demo, people, incident_source
):
    incident = report(demo_client, demo_keys, demo, incident_source)
    operator = signed_in(demo_client, people["operator"])
    skipped = post(operator, incident, status="closed")
    assert skipped.status_code == 409 and "the next step is registered" in skipped.text
    bad = post(operator, incident, status="nonsense")
    assert bad.status_code == 422 and "表单无效" in bad.text
    no_version = post(operator, incident, status="registered", version="")
    assert no_version.status_code == 422
    assert operator.get("/console?status=bogus").status_code == 422


# -- the queue -------------------------------------------------------------------------------
def test_the_queue_filters_counts_and_sorts_by_deadline(
    demo_client, demo_keys, demo, demo_engine, people, incident_source
):
    first = report(demo_client, demo_keys, demo, incident_source, "q-1")
    second = report(demo_client, demo_keys, demo, incident_source, "q-2")
    with demo_engine.begin() as conn:  # the first is long overdue, the second due later
        conn.execute(
            text("UPDATE incident SET deadline_at = now() - interval '2 days' WHERE id = :i"),
            {"i": first},
        )
        conn.execute(
            text("UPDATE incident SET deadline_at = now() + interval '2 days' WHERE id = :i"),
            {"i": second},
        )
    operator = signed_in(demo_client, people["operator"])
    page = operator.get(f"/console?source={incident_source}").text
    ids = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page)]
    assert ids == [first, second]
    assert re.search(rf'<tr data-id="{first}" class="gm-overdue"', page)
    assert re.search(r'data-status="reported"[^>]*>[^<]*<span class="gm-count">2<', page)
    late = operator.get(f"/console?source={incident_source}&overdue=true").text
    assert re.findall(r'<tr data-id="(\d+)"', late) == [str(first)]
    assert '超期 <span class="gm-en">Overdue</span> 1' in late
    registered = operator.get(f"/console?source={incident_source}&status=registered").text
    assert re.findall(r'<tr data-id="(\d+)"', registered) == []
    community = operator.get(f"/console?source={incident_source}&area={GRID[:12]}").text
    assert len(re.findall(r'<tr data-id="(\d+)"', community)) == 2
    listed = demo_client.get(
        f"/incidents?source={incident_source}&overdue=true", headers=demo_keys["viewer"]
    ).json()
    assert [f["id"] for f in listed["features"]] == [first]  # the API's list, same filter


def _tabs(page_html: str) -> dict[str, int]:
    found = re.findall(r'data-status="([a-z]+)"[^>]*>[^<]*<span class="gm-count">(\d+)<', page_html)
    return {status: int(n) for status, n in found}


def _street_counts(engine) -> dict[str, int]:
    """The operator's street, counted here: incidents per status under the active generation."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.status, count(*) FROM incident i JOIN incident_assignment a "
                "ON a.incident_id = i.id JOIN generation g ON g.id = a.generation_id "
                "AND g.is_active WHERE a.grid_code LIKE :s || '%' GROUP BY i.status"
            ),
            {"s": GRID[:9]},
        ).all()
    return {status: n for status, n in rows}


def test_the_unfiltered_queue_counts_its_scope_as_sql_does(
    demo_client, demo_keys, demo, demo_engine, people, incident_source
):
    """The tabs of the queue as it opens come from the kept counts (migration 0014): equal
    to a count in SQL, and after a report and a transition through the API too."""
    operator = signed_in(demo_client, people["operator"])
    before = _tabs(operator.get("/console").text)
    assert {k: v for k, v in before.items() if v} == _street_counts(demo_engine)
    incident = report(demo_client, demo_keys, demo, incident_source, "tabs-1")
    moved = demo_client.post(
        f"/incidents/{incident}/transitions",
        json={"status": "registered", "version": 1},
        headers=demo_keys["operator"],
    )
    assert moved.status_code == 200, moved.json()
    after = _tabs(operator.get("/console").text)
    assert {k: v for k, v in after.items() if v} == _street_counts(demo_engine)
    assert after["registered"] == before["registered"] + 1


def test_an_imported_closed_ticket_shows_its_steps_from_the_record(
    demo_client, demo_keys, demo_engine, people
):
    """The demo's incidents came in as an archive's tickets (no status-log rows): the
    timeline shows their steps at the record's times, marked as from the record; acting on
    one adds a logged step after them."""
    with demo_engine.connect() as conn:
        incident, times = conn.execute(
            text(
                "SELECT i.id, ARRAY[i.reported_at, i.registered_at, i.dispatched_at, "
                "i.handled_at, i.verified_at, i.closed_at] FROM incident i "
                "JOIN incident_current c ON c.id = i.id WHERE c.grid_code LIKE :s || '%' "
                "AND i.status = 'closed' AND NOT EXISTS (SELECT 1 FROM incident_status_log l "
                "WHERE l.incident_id = i.id) ORDER BY i.id LIMIT 1"
            ),
            {"s": GRID[:9]},
        ).one()
    api = demo_client.get(f"/incidents/{incident}", headers=demo_keys["viewer"]).json()
    steps = [(h["to_status"], h["action"]) for h in api["history"]]
    assert steps == [
        (status, "archive")
        for status, at in zip(
            ["reported", "registered", "dispatched", "handled", "verified", "closed"],
            times,
            strict=True,
        )
        if at is not None
    ]
    assert [h["at"] for h in api["history"]] == sorted(h["at"] for h in api["history"])
    assert steps[-1] == ("closed", "archive") and ("handled", "archive") in steps
    page = signed_in(demo_client, people["operator"]).get(f"/console/incidents/{incident}")
    assert page.status_code == 200
    timeline = page.text.split('id="gm-timeline"', 1)[1]
    assert timeline.count('data-action="archive"') == len(steps)
    assert "imported record" in timeline


# -- the report from the field ------------------------------------------------------------


@pytest.fixture
def reported(demo_engine) -> Iterator[str]:
    """A description of the test's own; its incidents and their photos go afterwards."""
    import shutil

    from app.config import Settings

    mark = f"现场上报 {uuid.uuid4().hex[:10]}"
    yield mark
    with demo_engine.begin() as conn:
        ids = conn.execute(
            text("DELETE FROM incident WHERE description = :d RETURNING id"), {"d": mark}
        ).scalars()
        for incident_id in ids:
            shutil.rmtree(Settings().data_dir / "photos" / str(incident_id), ignore_errors=True)


def _report_form(browser: TestClient) -> str:
    page = browser.get("/console/report")
    assert page.status_code == 200 and 'name="category"' in page.text
    return _CSRF.search(page.text).group(1)


def test_a_report_from_the_field_is_assigned_and_its_photo_kept_in_scope(
    demo_client, demo, demo_engine, people, reported
):
    operator = signed_in(demo_client, people["operator"])
    lon, lat = demo_point(demo, GRID)
    form = {
        "csrf_token": _report_form(operator),
        "category": "0401",
        "description": reported,
        "lon": f"{lon:.6f}",
        "lat": f"{lat:.6f}",
    }
    made = operator.post(
        "/console/report", data=form, files=[("photos", ("site.jpg", PNG, "image/jpeg"))]
    )
    assert made.status_code == 303, made.text
    incident = int(made.headers["location"].rsplit("/", 1)[1])
    with demo_engine.connect() as conn:
        grid, source = conn.execute(
            text("SELECT grid_code, source FROM incident_current WHERE id = :i"),
            {"i": incident},
        ).one()
    assert grid == GRID and source == "patrol"  # assigned to its grid on write
    page = operator.get(f"/console/incidents/{incident}").text
    (src,) = re.findall(r'<img src="([^"]+)"', page)
    assert src.endswith(".png")  # named by content, not by the file name sent
    served = operator.get(src)
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert signed_in(demo_client, people["outsider"]).get(src).status_code == 403
    assert TestClient(demo_client.app, follow_redirects=False).get(src).status_code == 303


def test_a_report_with_a_false_photo_or_outside_the_scope_stores_nothing(
    demo_client, demo, demo_engine, people, reported
):
    operator = signed_in(demo_client, people["operator"])
    lon, lat = demo_point(demo, GRID)
    form = {
        "csrf_token": _report_form(operator),
        "category": "0401",
        "description": reported,
        "lon": str(lon),
        "lat": str(lat),
    }
    script = operator.post(
        "/console/report",
        data=form,
        files=[("photos", ("photo.jpg", b"<script>alert(1)</script>", "image/jpeg"))],
    )
    assert script.status_code == 422 and "not a JPEG, PNG or WebP" in script.text
    assert reported in script.text  # the form keeps what was typed
    outsider = signed_in(demo_client, people["outsider"])
    elsewhere = outsider.post(
        "/console/report", data={**form, "csrf_token": _report_form(outsider)}
    )
    assert elsewhere.status_code == 403
    no_csrf = operator.post("/console/report", data={**form, "csrf_token": ""})
    assert no_csrf.status_code == 403
    with demo_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM incident WHERE description = :d"), {"d": reported}
        ).scalar_one()
    assert stored == 0


def test_a_department_user_works_only_for_its_department(
    demo_client, demo_keys, demo, people, department, incident_source
):
    whistled = report(demo_client, demo_keys, demo, incident_source, "dept-1")
    elsewhere = report(demo_client, demo_keys, demo, incident_source, "dept-2")
    operator = signed_in(demo_client, people["operator"])
    post(operator, whistled, status="registered", handling_level="street")
    post(operator, whistled, action="whistle", departments=[department])
    desk = signed_in(demo_client, people["department"])
    # its queue is what was whistled or dispatched to the department
    queue = desk.get(f"/console?source={incident_source}").text
    assert f'data-id="{whistled}"' in queue and f'data-id="{elsewhere}"' not in queue
    assert f'value="{department}" selected' in queue
    assert actions(desk.get(f"/console/incidents/{whistled}").text) == ["report_in"]
    assert actions(desk.get(f"/console/incidents/{elsewhere}").text) == []
    refused = post(desk, elsewhere, status="registered")
    assert refused.status_code == 403 and "部门用户只能为本部门报到处置" in refused.text
    also = post(desk, whistled, action="whistle", departments=[department])
    assert also.status_code == 403
    # what is dispatched to the department, the department handles
    post(operator, elsewhere, status="registered")
    post(operator, elsewhere, status="dispatched", handler=f"dept:{department}")
    assert actions(desk.get(f"/console/incidents/{elsewhere}").text) == ["handle"]
    assert post(desk, elsewhere, status="handled").status_code == 303


def test_a_report_from_the_field_names_its_reporter_in_the_timeline(
    demo_client, demo, people, reported
):
    operator = signed_in(demo_client, people["operator"])
    lon, lat = demo_point(demo, GRID)
    form = {
        "csrf_token": _report_form(operator),
        "category": "0401",
        "description": reported,
        "lon": f"{lon:.6f}",
        "lat": f"{lat:.6f}",
    }
    made = operator.post("/console/report", data=form)
    assert made.status_code == 303, made.text
    page = operator.get(made.headers["location"]).text
    first = re.search(r'<li data-action="" data-to="reported">(.*?)</li>', page, re.S)
    assert first is not None and people["operator"][0] in first.group(1)
