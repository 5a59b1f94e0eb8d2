"""Who handles an incident and by when: assignee, department, 吹哨报到, deadlines, versions.

Through the API on the demo database (every incident of a source of the test's own,
deleted afterwards; the departments of the module, deleted afterwards), plus the
versioned write and the migration's backfill on the empty test database.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from app.db import departments as department_rows
from app.services.handling import Step, apply_step
from app.services.security import Principal
from gis.vocabulary import OPEN_STATUSES
from tests.helpers import demo_point

pytestmark = pytest.mark.db

GRID = "411002003001003"
OTHER_GRID = "411002003001001"
OPEN = list(OPEN_STATUSES)


@pytest.fixture(scope="module")
def departments(demo_engine) -> dict[str, str]:
    """Three departments of this module's own (codes unique to the run), deleted afterwards."""
    tag = uuid.uuid4().hex[:6].upper()
    names = {f"CG{tag}": "区城市管理局", f"SJ{tag}": "区市场监督管理局", f"ZJ{tag}": "区住建局"}
    with demo_engine.begin() as conn:
        department_rows.upsert_departments(
            conn, [{"code": c, "name": n, "contact": None} for c, n in names.items()]
        )
    yield names
    with demo_engine.begin() as conn:
        codes = {"codes": list(names)}
        conn.execute(
            text("DELETE FROM incident_whistle WHERE department_code = ANY(:codes)"), codes
        )
        conn.execute(
            text("UPDATE incident SET department_code = NULL WHERE department_code = ANY(:codes)"),
            codes,
        )
        conn.execute(text("DELETE FROM department WHERE code = ANY(:codes)"), codes)


def staff_of(engine, grid: str) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (i, n)
            for i, n in conn.execute(
                text(
                    "SELECT s.id, s.name FROM staff s JOIN generation g ON g.id = s.generation_id "
                    "AND g.is_active WHERE s.area_code = :g ORDER BY s.id"
                ),
                {"g": grid},
            )
        ]


class Loop:
    """One incident of the test's source and the steps taken on it."""

    def __init__(self, client, keys, source, demo, external_id="w-1", **fields):
        lon, lat = demo_point(demo, GRID)
        body = {"source": source, "external_id": external_id, "category": "0401"}
        made = client.post(
            "/incidents", json={**body, "lon": lon, "lat": lat, **fields}, headers=keys["operator"]
        )
        assert made.status_code == 201, made.json()
        self.client, self.keys, self.doc = client, keys, made.json()
        self.id = self.doc["id"]

    def step(self, **body):
        response = self.client.post(
            f"/incidents/{self.id}/transitions", json=body, headers=self.keys["operator"]
        )
        if response.status_code == 200:
            self.doc = response.json()
        return response

    def ok(self, **body) -> dict:
        response = self.step(version=self.doc["version"], **body)
        assert response.status_code == 200, response.json()
        return self.doc

    def read(self) -> dict:
        return self.client.get(f"/incidents/{self.id}", headers=self.keys["viewer"]).json()


def log_count(engine, incident_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM incident_status_log WHERE incident_id = :i"),
            {"i": incident_id},
        ).scalar_one()


# -- assignee and department -------------------------------------------------------------
def test_dispatch_to_a_staff_member_of_the_grid(
    demo_client, demo_keys, demo, demo_engine, incident_source
):
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    assert loop.doc["version"] == 1 and loop.doc["assignee"] is None
    loop.ok(status="registered")
    (outsider, _), *_ = staff_of(demo_engine, OTHER_GRID)
    refused = loop.step(status="dispatched", assignee=outsider)
    assert refused.status_code == 422
    assert f"not on the roster of grid {GRID}" in refused.json()["detail"]
    missing = loop.step(status="dispatched", assignee=2**40)
    assert missing.status_code == 422 and "its staff:" in missing.json()["detail"]
    ours = staff_of(demo_engine, GRID)
    eligible = demo_client.get(
        f"/incidents/{loop.id}/assignees", headers=demo_keys["viewer"]
    ).json()
    assert {s["id"] for s in eligible} >= {i for i, _ in ours} and outsider not in {
        s["id"] for s in eligible
    }
    assert all(s["area_code"].startswith(GRID) and "phone" not in s for s in eligible)
    doc = loop.ok(status="dispatched", assignee=ours[0][0])
    assert doc["assignee"] == {"staff_id": ours[0][0], "name": ours[0][1]}
    assert doc["status"] == "dispatched" and doc["version"] == 3
    assert doc["history"][-1]["assignee_name"] == ours[0][1]
    assert doc["history"][-1]["action"] == "advance"
    if len(ours) > 1:  # another worker of the grid takes it over
        again = loop.ok(status="dispatched", assignee=ours[1][0])
        assert again["assignee"]["name"] == ours[1][1]
        assert again["history"][-1]["action"] == "reassign"
        assert again["timestamps"]["dispatched"] == doc["timestamps"]["dispatched"]


def test_dispatch_to_a_department(demo_client, demo_keys, demo, departments, incident_source):
    code = next(iter(departments))
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    loop.ok(status="registered")
    doc = loop.ok(status="dispatched", department=code, note="占道经营，转城管")
    assert doc["department"] == {"code": code, "name": departments[code]}
    assert doc["assignee"] is None and doc["history"][-1]["departments"] == [code]
    handled = loop.ok(status="handled", department=code)
    assert handled["status"] == "handled"


def test_unknown_fields_departments_and_misplaced_handlers_are_422(
    demo_client, demo_keys, demo, incident_source
):
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    for body in (
        {"status": "registered", "departmnet": "CGJ"},  # misspelt: never ignored
        {"status": "registered", "assignee": 1},  # a handler only at dispatch
        {"action": "whistle"},  # names no department
        {"action": "whistle", "departments": ["CGJ"], "status": "dispatched"},
        {"departments": ["CGJ"], "status": "registered"},
        {"status": "registered", "department": "城管"},  # not a code
    ):
        response = loop.step(**body)
        assert response.status_code == 422, (body, response.json())
    loop.ok(status="registered")
    unknown = loop.step(status="dispatched", department="NOPE-404")
    assert unknown.status_code == 422 and "unknown department NOPE-404" in unknown.json()["detail"]
    both = loop.step(status="dispatched", department="NOPE", assignee=1)
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    assert loop.read()["status"] == "registered" and loop.read()["version"] == 2


# -- 吹哨报到 -------------------------------------------------------------------------------
def test_only_the_street_whistles_and_every_department_reports_in(
    demo_client, demo_keys, demo, departments, incident_source
):
    cg, sj, zj = departments
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    loop.ok(status="registered")
    loop.ok(status="dispatched", handling_level="community")
    early = loop.step(action="whistle", departments=[cg], version=loop.doc["version"])
    assert early.status_code == 409 and "only the street whistles" in early.json()["detail"]
    loop.ok(status="dispatched", handling_level="street", note="社区无法协调")
    doc = loop.ok(action="whistle", departments=[cg, sj], note="街道吹哨")
    assert [w["department"]["code"] for w in doc["whistled"]] == [cg, sj]
    assert doc["history"][-1]["action"] == "whistle" and doc["history"][-1]["departments"] == [
        cg,
        sj,
    ]
    twice = loop.step(action="whistle", departments=[sj, zj], version=loop.doc["version"])
    assert (
        twice.status_code == 409
        and f"already whistled for this incident: {sj}" in (twice.json()["detail"])
    )
    anonymous = loop.step(status="handled", version=loop.doc["version"])
    assert anonymous.status_code == 422 and f"waiting for {cg}, {sj}" in anonymous.json()["detail"]
    stranger = loop.step(status="handled", department=zj, version=loop.doc["version"])
    assert stranger.status_code == 409 and "was not whistled" in stranger.json()["detail"]
    first = loop.ok(status="handled", department=cg, note="已清理占道")
    assert first["status"] == "dispatched"  # SJ has not reported in yet
    assert [w["reported_at"] is not None for w in first["whistled"]] == [True, False]
    again = loop.step(status="handled", department=cg, version=loop.doc["version"])
    assert again.status_code == 409 and "already reported" in again.json()["detail"]
    last = loop.ok(status="handled", department=sj)
    assert last["status"] == "handled" and last["timestamps"]["handled"]
    reopened = loop.ok(status="dispatched", note="核查未通过")
    assert all(w["reported_at"] is None for w in reopened["whistled"])
    actions = [h["action"] for h in reopened["history"]]
    assert actions[-4:] == ["whistle", "report_in", "report_in", "reopen"]


def test_a_department_user_reports_for_its_own_department_only(
    demo_client, demo_keys, demo, demo_engine, departments, incident_source
):
    cg, sj, _ = departments
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    loop.ok(status="registered", handling_level="street")
    loop.ok(action="whistle", departments=[cg, sj])
    clerk = Principal(key_id=None, prefix="cg-clerk", role="operator", department=cg)
    from app.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError, match=f"you report for department {cg}"):
        apply_step(demo_engine, loop.id, Step(status="handled", department=sj), clerk)
    version = apply_step(demo_engine, loop.id, Step(status="handled", note="到场处置"), clerk)
    doc = loop.read()
    assert doc["version"] == version
    reported = {w["department"]["code"]: w["reported_at"] for w in doc["whistled"]}
    assert reported[cg] is not None and reported[sj] is None


# -- optimistic concurrency --------------------------------------------------------------
def test_a_stale_version_gets_409_saying_what_changed(
    demo_client, demo_keys, demo, incident_source
):
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    url = f"/incidents/{loop.id}/transitions"
    seen = demo_client.get(f"/incidents/{loop.id}", headers=demo_keys["viewer"])
    assert seen.headers["ETag"] == '"1"'
    loop.ok(status="registered", note="first")
    stale = loop.step(status="registered", version=1)
    assert stale.status_code == 409
    body = stale.json()
    assert (
        "changed since version 1" in body["detail"] and "registered (version 2)" in body["detail"]
    )
    assert body["current"]["status"] == "registered" and body["current"]["version"] == 2
    assert body["current"]["last_step"]["to_status"] == "registered"
    assert body["current"]["last_step"]["by"].startswith("api-test-operator")
    operator = demo_keys["operator"]
    by_etag = demo_client.post(
        url, json={"status": "dispatched"}, headers={**operator, "If-Match": '"1"'}
    )
    assert by_etag.status_code == 409 and by_etag.json()["current"]["version"] == 2
    fresh = demo_client.post(
        url, json={"status": "dispatched"}, headers={**operator, "If-Match": '"2"'}
    )
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"3"'
    for header, body_version in (('"x"', None), ('"3"', 2)):
        bad = demo_client.post(
            url,
            json={"status": "handled", "version": body_version},
            headers={**operator, "If-Match": header},
        )
        assert bad.status_code == 422, bad.json()


@pytest.mark.parametrize("send_version", [True, False])
def test_twenty_simultaneous_identical_actions_make_one_transition(
    demo_client, demo_keys, demo, demo_engine, incident_source, send_version
):
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    loop.ok(status="registered")
    before = log_count(demo_engine, loop.id)
    body = {"status": "dispatched", **({"version": 2} if send_version else {})}
    start = threading.Barrier(20)

    def act(_: int):
        start.wait()
        return demo_client.post(
            f"/incidents/{loop.id}/transitions", json=body, headers=demo_keys["operator"]
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(act, range(20)))
    codes = Counter(a.status_code for a in answers)
    assert codes == {200: 1, 409: 19}, [a.json() for a in answers if a.status_code != 200]
    assert log_count(demo_engine, loop.id) == before + 1
    doc = loop.read()
    assert doc["status"] == "dispatched" and doc["version"] == 3
    assert [h["to_status"] for h in doc["history"]].count("dispatched") == 1


def test_the_versioned_write_lets_one_of_two_writers_through(
    demo_client, demo_keys, demo, demo_engine, incident_source
):
    """Two transactions update the same version: the second waits for the first, then
    finds the version gone and writes nothing."""
    loop = Loop(demo_client, demo_keys, incident_source, demo)
    first = demo_engine.connect()
    tx = first.begin()
    try:
        assert department_rows.update_if_version(first, loop.id, 1, {}) == 2
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(_update_in_own_transaction, demo_engine, loop.id, 1)
            with pytest.raises(TimeoutError):
                second.result(timeout=1)  # blocked on the first one's row lock
            tx.commit()
            assert second.result(timeout=30) is None
    finally:
        first.close()
    assert loop.read()["version"] == 2


def _update_in_own_transaction(engine, incident_id: int, version: int):
    with engine.begin() as conn:
        return department_rows.update_if_version(conn, incident_id, version, {})


# -- deadlines and the overdue filter ------------------------------------------------------
def _overdue_in_sql(engine, source: str | None = None) -> tuple[int, int]:
    """(overdue, all) counted directly: open and past the deadline."""
    where = "WHERE source = :s" if source else ""
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE status = ANY(:open) AND deadline_at < now()), "
                    f"count(*) FROM incident {where}"
                ),
                {"open": OPEN, "s": source},
            ).one()
        )


def test_overdue_filter_equals_a_direct_count(
    demo_client, demo_keys, demo, demo_engine, incident_source
):
    old = "2024-05-01T09:30:00"
    late = Loop(demo_client, demo_keys, incident_source, demo, "o-1", reported_at=old)
    later = Loop(demo_client, demo_keys, incident_source, demo, "o-2", reported_at=old)
    done = Loop(demo_client, demo_keys, incident_source, demo, "o-3", reported_at=old)
    fresh = Loop(demo_client, demo_keys, incident_source, demo, "o-4")
    for status in ("registered", "dispatched", "handled"):
        done.ok(status=status)
    assert late.doc["overdue"] is True and fresh.doc["overdue"] is False
    assert done.doc["overdue"] is False and done.doc["handled_late"] is True
    assert late.doc["deadline_at"].startswith("2024-05-01T05:30:00")  # 4 h for 0401

    def matched(**params) -> tuple[int, set[int]]:
        listed = demo_client.get(
            "/incidents", params={"limit": 100, **params}, headers=demo_keys["viewer"]
        ).json()
        return listed["numberMatched"], {f["id"] for f in listed["features"]}

    overdue, total = _overdue_in_sql(demo_engine, incident_source)
    assert (overdue, total) == (2, 4)
    assert matched(source=incident_source, overdue="true") == (2, {late.id, later.id})
    assert matched(source=incident_source, overdue="false")[0] == total - overdue
    assert matched(source=incident_source)[0] == total
    # the whole demo district, and the OGC collection with the same filter
    overdue_all, total_all = _overdue_in_sql(demo_engine)
    assert 0 < overdue_all < total_all
    assert matched(overdue="true", limit=1)[0] == overdue_all
    assert matched(overdue="false", limit=1)[0] == total_all - overdue_all
    ogc = demo_client.get(
        "/collections/incidents/items",
        params={"overdue": "true", "limit": 1},
        headers=demo_keys["viewer"],
    ).json()
    assert ogc["numberMatched"] == overdue_all
    viewer = demo_keys["viewer"]
    one = demo_client.get(f"/open311/v2/requests/{late.id}.json", headers=viewer).json()[0]
    assert one["expected_datetime"] == late.doc["deadline_at"].replace("+00:00", "Z") or (
        one["expected_datetime"] == late.doc["deadline_at"]
    )
    listed = demo_client.get(
        "/open311/v2/requests.json", params={"overdue": "true", "page_size": 1000}, headers=viewer
    ).json()
    assert len(listed) == min(overdue_all, 1000)
    assert all(r["status"] == "open" and r["detailed_status"] in OPEN for r in listed)
    assert (
        demo_client.get(
            "/incidents", params={"overdue": "maybe"}, headers=demo_keys["viewer"]
        ).status_code
        == 422
    )


def test_every_stored_deadline_is_its_category_deadline(demo_engine):
    with demo_engine.connect() as conn:
        wrong, with_deadline = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE i.deadline_at IS DISTINCT FROM "
                "i.reported_at + make_interval(hours => t.deadline_hours)), "
                "count(i.deadline_at) FROM incident i LEFT JOIN taxonomy_item t "
                "ON t.version_id = i.taxonomy_version AND t.code = i.category"
            )
        ).one()
    assert wrong == 0 and with_deadline > 40_000


def test_migration_backfills_deadlines_and_downgrades(clean_db):
    from alembic import command
    from sqlalchemy import inspect

    from app.db.session import alembic_config, upgrade
    from tests.helpers import engine_url

    url = engine_url(clean_db)
    command.downgrade(alembic_config(url), "0008")
    try:
        with clean_db.begin() as conn:
            assert not inspect(conn).has_table("department")
            conn.execute(
                text(
                    "INSERT INTO incident (source, external_id, category, taxonomy_version, "
                    "reported_at, location_status) SELECT 'patrol', 'm-1', '0401', max(id), "
                    "'2024-05-01T01:30:00Z', 'unlocated' FROM taxonomy_version"
                )
            )
    finally:
        upgrade(url)
    with clean_db.connect() as conn:
        deadline, version = conn.execute(
            text("SELECT deadline_at, version FROM incident WHERE external_id = 'm-1'")
        ).one()
    assert deadline.isoformat().startswith("2024-05-01T05:30:00") and version == 1
