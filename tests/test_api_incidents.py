"""Incidents: created located and assigned, idempotent, listed, moved through the closed loop.

Every incident made here has a source of the test's own and is deleted after it
(``incident_source``), so the demo database is left as it was.
"""

from __future__ import annotations

import pytest

from gis import crs as crs_mod
from tests.helpers import demo_point

pytestmark = pytest.mark.db

GRID = "411002003001003"


def _create(client, keys, source, external_id="a-1", **fields):
    body = {"source": source, "external_id": external_id, "category": "0401", **fields}
    return client.post("/incidents", json=body, headers=keys["operator"])


def test_create_assigns_on_write_and_is_idempotent(demo_client, demo_keys, demo, incident_source):
    lon, lat = demo_point(demo, GRID)
    first = _create(
        demo_client,
        demo_keys,
        incident_source,
        lon=lon,
        lat=lat,
        description="楼道内飞线充电",
        reported_at="2024-05-01T09:30:00",
    )
    assert first.status_code == 201
    doc = first.json()
    assert doc["assignment"]["grid"]["code"] == GRID
    assert doc["assignment"]["grid"]["name"]
    assert doc["assignment"]["status"] == "inside"
    assert doc["category_name"] == "飞线充电" and doc["status"] == "reported"
    assert doc["reported_at"].startswith("2024-05-01T01:30:00")  # 09:30 China time
    assert doc["deadline_at"].startswith("2024-05-01T05:30:00")  # 4 h for 0401
    same = {"lon": lon, "lat": lat, "description": "楼道内飞线充电"}
    again = _create(demo_client, demo_keys, incident_source, **same, reported_at="2024-05-01T09:30")
    assert again.status_code == 200 and again.json()["id"] == doc["id"], again.json()
    other = _create(demo_client, demo_keys, incident_source, lon=0.5, lat=0.5)  # issue 15
    assert other.status_code == 409 and "raw_lon" in other.json()["detail"]


def test_gcj02_report_lands_where_its_wgs84_twin_does(
    demo_client, demo_keys, demo, incident_source
):
    lon, lat = demo_point(demo, GRID)
    gx, gy = crs_mod.from_wgs84(lon, lat, "gcj02")
    doc = _create(
        demo_client, demo_keys, incident_source, lon=float(gx), lat=float(gy), crs="gcj02"
    ).json()
    assert doc["assignment"]["grid"]["code"] == GRID
    assert doc["raw"] == {"lon": float(gx), "lat": float(gy), "crs": "gcj02"}
    assert doc["location"]["lon"] == pytest.approx(lon, abs=1e-7)


def test_address_only_is_geocoded(demo_client, demo_keys, demo, incident_source):
    entry = demo.gazetteer.iloc[0]
    doc = _create(demo_client, demo_keys, incident_source, address=entry["address"]).json()
    assert doc["location_status"] == "geocoded"
    assert doc["assignment"]["grid"] is not None
    lost = _create(
        demo_client, demo_keys, incident_source, external_id="a-2", address="火星市不存在路1号"
    ).json()
    assert lost["location_status"] == "unlocated" and lost["unlocated_reason"]
    assert lost["assignment"]["grid"] is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"category": "9999", "lon": 113.8, "lat": 34.0}, "unknown category"),
        ({"lon": 113.82, "lat": 134.0}, "lat"),
        ({"source": "Bad Source!"}, "source"),
        ({"external_id": ""}, "external_id"),
        ({"description": "nul\x00byte"}, "NUL"),
    ],
)
def test_bad_incidents_are_refused_with_the_reason(
    demo_client, demo_keys, incident_source, fields, words
):
    body = {"source": incident_source, "external_id": "bad", "category": "0401", **fields}
    response = demo_client.post("/incidents", json=body, headers=demo_keys["operator"])
    assert response.status_code == 422
    assert words in str(response.json()["detail"])


def test_swapped_coordinates_are_refused(demo_client, demo_keys, demo, incident_source):
    lon, lat = demo_point(demo, GRID)
    response = _create(demo_client, demo_keys, incident_source, lon=lat, lat=lon)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "lat"]


def test_writes_need_an_operator(demo_client, demo_keys, incident_source):
    body = {"source": incident_source, "external_id": "x", "category": "0401"}
    assert demo_client.post("/incidents", json=body).status_code == 401
    response = demo_client.post("/incidents", json=body, headers=demo_keys["viewer"])
    assert response.status_code == 403 and "operator role" in response.json()["detail"]
    assert demo_client.get("/incidents").status_code == 401


def test_the_closed_loop(demo_client, demo_keys, demo, incident_source):
    lon, lat = demo_point(demo, GRID)
    incident = _create(demo_client, demo_keys, incident_source, lon=lon, lat=lat).json()
    url = f"/incidents/{incident['id']}/transitions"
    operator = demo_keys["operator"]

    def step(**body):
        return demo_client.post(url, json=body, headers=operator)

    jump = step(status="handled")
    assert jump.status_code == 409
    assert "next step is registered" in jump.json()["detail"]
    assert step(status="registered").json()["status"] == "registered"
    dispatched = step(status="dispatched").json()
    assert dispatched["handling_level"] == "grid" and dispatched["timestamps"]["dispatched"]
    escalated = step(status="dispatched", handling_level="community", note="物业不配合")
    assert escalated.json()["handling_level"] == "community"
    lower = step(status="dispatched", handling_level="grid")
    assert lower.status_code == 409 and "cannot lower" in lower.json()["detail"]
    assert step(status="handled").status_code == 200
    reopened = step(status="dispatched", note="核查未通过").json()
    assert reopened["status"] == "dispatched" and reopened["timestamps"]["handled"] is None
    for status in ("handled", "verified", "closed"):
        assert step(status=status).status_code == 200
    final = step(status="closed")
    assert final.status_code == 409 and "final" in final.json()["detail"]
    doc = demo_client.get(f"/incidents/{incident['id']}", headers=demo_keys["viewer"]).json()
    assert [h["to_status"] for h in doc["history"]] == [
        "reported",
        "registered",
        "dispatched",
        "dispatched",
        "handled",
        "dispatched",
        "handled",
        "verified",
        "closed",
    ]
    assert doc["history"][3]["note"] == "物业不配合"
    assert all(
        doc["timestamps"][s] for s in ("registered", "dispatched", "handled", "verified", "closed")
    )


def test_transition_errors(demo_client, demo_keys):
    body = {"status": "registered"}
    assert (
        demo_client.post(
            "/incidents/999999999/transitions", json=body, headers=demo_keys["operator"]
        ).status_code
        == 404
    )
    assert (
        demo_client.post(
            "/incidents/50001/transitions", json=body, headers=demo_keys["viewer"]
        ).status_code
        == 403
    )
    bad = demo_client.post(
        "/incidents/50001/transitions", json={"status": "solved"}, headers=demo_keys["operator"]
    )
    assert bad.status_code == 422
    assert demo_client.get("/incidents/0", headers=demo_keys["viewer"]).status_code == 422
    assert demo_client.get("/incidents/999999999", headers=demo_keys["viewer"]).status_code == 404


def test_self_handled_and_escalated_shares(demo_client, demo_keys, demo, incident_source):
    lon, lat = demo_point(demo, GRID)
    for i, level in enumerate(("grid", "grid", "grid", "street")):
        incident = _create(
            demo_client, demo_keys, incident_source, external_id=f"s-{i}", lon=lon, lat=lat
        ).json()
        url = f"/incidents/{incident['id']}/transitions"
        demo_client.post(url, json={"status": "registered"}, headers=demo_keys["operator"])
        demo_client.post(
            url,
            json={"status": "dispatched", "handling_level": level},
            headers=demo_keys["operator"],
        )
        demo_client.post(url, json={"status": "handled"}, headers=demo_keys["operator"])
    stats = demo_client.get(
        f"/grids/{GRID}/stats", params={"source": incident_source}, headers=demo_keys["viewer"]
    ).json()
    assert stats["totals"] == {"incidents": 4, "open": 0, "resolved": 4}
    assert stats["handling"]["self_handled_share"] == 0.75
    assert stats["handling"]["escalated_share"] == 0.25
    assert stats["overdue"]["handled_on_time"] == 4  # handled within the 4 h of 0401


def test_list_and_read(demo_client, demo_keys, demo, incident_source):
    lon, lat = demo_point(demo, GRID)
    made = _create(demo_client, demo_keys, incident_source, lon=lon, lat=lat).json()
    listed = demo_client.get(
        "/incidents", params={"source": incident_source, "grid": GRID}, headers=demo_keys["viewer"]
    ).json()
    assert [f["id"] for f in listed["features"]] == [made["id"]]
    assert listed["features"][0]["properties"]["grid_code"] == GRID
    read = demo_client.get(f"/incidents/{made['id']}", headers=demo_keys["viewer"]).json()
    assert read["history"][0]["to_status"] == "reported"


# -- Open311 ---------------------------------------------------------------------------
def test_services_are_the_taxonomy(demo_client):
    services = demo_client.get("/open311/v2/services.json").json()
    codes = {s["service_code"] for s in services}
    assert {"0101", "0401", "0406"} <= codes
    english = demo_client.get("/open311/v2/services.json?lang=en").json()
    assert any(s["service_name"] == "Illegal parking" for s in english)
    assert demo_client.get("/open311/v2/services/0401.json").json()["attributes"] == []
    assert demo_client.get("/open311/v2/services/9999.json").status_code == 404


def test_open311_request_round_trip(demo_client, demo_keys, demo, demo_engine):
    from sqlalchemy import text

    lon, lat = demo_point(demo, GRID)
    key = demo_keys["operator"]["X-API-Key"]
    form = {
        "service_code": "0402",
        "lat": str(lat),
        "long": str(lon),
        "api_key": key,
        "description": "消防通道被占",
        "external_id": "o311-test-1",
    }
    created = demo_client.post("/open311/v2/requests.json", data=form)
    try:
        assert created.status_code == 201
        request_id = created.json()[0]["service_request_id"]
        assert GRID in created.json()[0]["service_notice"]
        again = demo_client.post("/open311/v2/requests.json", data=form).json()
        assert again[0]["service_request_id"] == request_id
        one = demo_client.get(
            f"/open311/v2/requests/{request_id}.json",
            params={"api_key": demo_keys["viewer"]["X-API-Key"]},
        ).json()[0]
        assert (one["status"], one["detailed_status"], one["grid_code"]) == (
            "open",
            "reported",
            GRID,
        )
        assert one["long"] == pytest.approx(lon) and one["service_name"] == "消防通道堵塞"
        for status in ("registered", "dispatched", "handled", "verified", "closed"):
            demo_client.post(
                f"/incidents/{request_id}/transitions",
                json={
                    "status": status,
                    **({"handling_level": "community"} if status == "dispatched" else {}),
                },
                headers=demo_keys["operator"],
            )
        closed = demo_client.get(
            f"/open311/v2/requests/{request_id}.json", headers=demo_keys["viewer"]
        ).json()[0]
        assert closed["status"] == "closed"
        assert closed["status_notes"] == "closed; handled at community level (escalated)"
        listed = demo_client.get(
            "/open311/v2/requests.json",
            headers=demo_keys["viewer"],
            params={"service_request_id": request_id},
        ).json()
        assert [r["service_request_id"] for r in listed] == [request_id]
    finally:
        with demo_engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM incident WHERE source = 'open311' AND external_id = 'o311-test-1'"
                )
            )


def test_open311_listing_filters(demo_client, demo_keys):
    viewer = demo_keys["viewer"]
    assert demo_client.get("/open311/v2/requests.json").status_code == 401
    page = demo_client.get(
        "/open311/v2/requests.json",
        headers=viewer,
        params={
            "service_code": "0401,0402",
            "status": "closed",
            "start_date": "2023-06-01",
            "end_date": "2023-06-30",
            "page_size": 20,
            "page": 2,
            "bbox": "113.80,34.00,113.86,34.06",
        },
    ).json()
    assert 0 < len(page) <= 20
    for request in page:
        assert request["service_code"] in ("0401", "0402") and request["status"] == "closed"
        assert request["requested_datetime"][:7] == "2023-06"
    # the demo's history ends with 2023: what is still open was reported in its last weeks
    still_open = demo_client.get(
        "/open311/v2/requests.json",
        headers=viewer,
        params={
            "status": "open",
            "start_date": "2023-12-01",
            "end_date": "2023-12-31",
            "page_size": 20,
            "page": 2,
        },
    ).json()
    assert 0 < len(still_open) <= 20
    for request in still_open:
        assert request["status"] == "open" and request["requested_datetime"][:7] == "2023-12"
    closed = demo_client.get(
        "/open311/v2/requests.json?status=closed&page_size=5", headers=viewer
    ).json()
    assert all(r["status"] == "closed" for r in closed)
    assert (
        demo_client.get("/open311/v2/requests.json?status=pending", headers=viewer).status_code
        == 422
    )


def test_open311_post_errors(demo_client, demo_keys):
    operator = demo_keys["operator"]
    nowhere = demo_client.post(
        "/open311/v2/requests.json", data={"service_code": "0401"}, headers=operator
    )
    assert nowhere.status_code == 422 and "address_string" in nowhere.json()["detail"]
    unknown = demo_client.post(
        "/open311/v2/requests.json",
        headers=operator,
        data={"service_code": "7777", "lat": "34.03", "long": "113.82"},
    )
    assert unknown.status_code == 422 and "unknown category" in unknown.json()["detail"]
    bad_key = demo_client.post(
        "/open311/v2/requests.json",
        data={"service_code": "0401", "lat": "34.03", "long": "113.82", "api_key": "gm_nope"},
    )
    assert bad_key.status_code == 401
    assert (
        demo_client.get(
            "/open311/v2/requests/123456789.json", headers=demo_keys["viewer"]
        ).status_code
        == 404
    )
