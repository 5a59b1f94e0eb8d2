"""/grids/{code}: properties, staff, counts, children, neighbours, incidents, statistics."""

from __future__ import annotations

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db

GRID = "411002003001003"


def test_a_grid_with_staff_counts_and_links(demo_client, demo):
    response = demo_client.get(f"/grids/{GRID}")
    assert response.headers["content-type"] == "application/geo+json"
    doc = response.json()
    props = doc["properties"]
    row = demo.grids.set_index("code").loc[GRID]
    assert (doc["id"], props["name"], props["parent_code"]) == (GRID, row["name"], GRID[:12])
    assert doc["geometry"]["type"] == "MultiPolygon"
    staff = demo.staff[demo.staff["area_code"] == GRID]
    assert sorted(s["role"] for s in props["staff"]) == sorted(staff["role"])
    assert props["counts"]["children"] == (demo.micro_grids["parent_code"] == GRID).sum()
    assert "incidents" not in props["counts"]  # no key: boundaries only
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "children", "neighbors", "incidents", "stats", "up"} <= rels


def test_incident_counts_with_a_viewer_key(demo_client, demo_keys, demo_engine):
    props = demo_client.get(f"/grids/{GRID}", headers=demo_keys["viewer"]).json()["properties"]
    with demo_engine.connect() as conn:
        total = conn.execute(
            text("SELECT count(*) FROM incident_current WHERE grid_code = :g"), {"g": GRID}
        ).scalar_one()
    assert props["counts"]["incidents"]["total"] == total > 0


def test_any_level_and_unknown_codes(demo_client):
    community = demo_client.get(f"/grids/{GRID[:12]}").json()
    assert community["properties"]["level"] == "community"
    assert demo_client.get("/grids/411002999999999").status_code == 404
    assert demo_client.get("/grids/41100x").status_code == 422


def test_children_are_the_micro_grids(demo_client, demo):
    doc = demo_client.get(f"/grids/{GRID}/children").json()
    expected = sorted(demo.micro_grids.loc[demo.micro_grids["parent_code"] == GRID, "code"])
    assert [f["id"] for f in doc["features"]] == expected
    assert doc["numberMatched"] == len(expected)


def test_neighbours_share_a_boundary_both_ways(demo_client, demo):
    doc = demo_client.get(f"/grids/{GRID}/neighbors").json()
    neighbours = {n["code"]: n["shared_boundary_m"] for n in doc["neighbours"]}
    geometry = demo.grids.set_index("code").geometry
    touching = {c for c, g in geometry.items() if c != GRID and g.touches(geometry[GRID])}
    assert set(neighbours) == touching
    first, length = next(iter(neighbours.items()))
    assert length == max(neighbours.values()) > 50
    back = demo_client.get(f"/grids/{first}/neighbors").json()
    assert {n["code"]: n["shared_boundary_m"] for n in back["neighbours"]}[GRID] == pytest.approx(
        length, rel=1e-3
    )


def test_grid_incidents_need_a_key_and_are_newest_first(demo_client, demo_keys):
    assert demo_client.get(f"/grids/{GRID}/incidents").status_code == 401
    doc = demo_client.get(f"/grids/{GRID}/incidents?limit=50", headers=demo_keys["viewer"]).json()
    times = [f["properties"]["reported_at"] for f in doc["features"]]
    assert times == sorted(times, reverse=True)
    assert all(f["properties"]["grid_code"] == GRID for f in doc["features"])
    community = demo_client.get(f"/grids/{GRID[:12]}/incidents", headers=demo_keys["viewer"]).json()
    assert community["numberMatched"] >= doc["numberMatched"]


def test_stats_add_up(demo_client, demo_keys, demo_engine):
    assert demo_client.get(f"/grids/{GRID}/stats").status_code == 401
    doc = demo_client.get(f"/grids/{GRID}/stats", headers=demo_keys["viewer"]).json()
    total = doc["totals"]["incidents"]
    assert sum(c["count"] for c in doc["by_category"]) == total
    assert sum(doc["by_status"].values()) == total == sum(doc["by_source"].values())
    assert sum(p["count"] for p in doc["by_period"]) == total
    assert all(c["name"] for c in doc["by_category"])
    # The demo's incidents come with their history of 2023: handled at each level, most
    # in time; those still open at the end of the year are all past their deadline now.
    with demo_engine.connect() as conn:
        want = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE i.status IN ('reported', 'registered',"
                "  'dispatched')) AS open,"
                " count(*) FILTER (WHERE i.handled_at <= i.deadline_at) AS on_time,"
                " count(*) FILTER (WHERE i.handled_at > i.deadline_at) AS late,"
                " count(*) FILTER (WHERE i.handling_level = 'grid') AS grid,"
                " count(i.handling_level) AS levelled"
                " FROM incident i JOIN incident_assignment a ON a.incident_id = i.id"
                " JOIN generation g ON g.id = a.generation_id AND g.is_active"
                " WHERE a.grid_code = :g"
            ),
            {"g": GRID},
        ).one()
    assert doc["overdue"]["open_past_deadline"] == want.open == doc["totals"]["open"]
    assert doc["overdue"]["handled_on_time"] == want.on_time > 0
    assert doc["overdue"]["handled_late"] == want.late < want.on_time
    assert doc["handling"]["self_handled_share"] == round(want.grid / want.levelled, 4)
    march = demo_client.get(
        f"/grids/{GRID}/stats",
        headers=demo_keys["viewer"],
        params={"datetime": "2023-03-01/2023-03-31", "interval": "day"},
    ).json()
    assert all(p["period"].startswith("2023-03") for p in march["by_period"])
    assert march["totals"]["incidents"] <= total


def test_district_stats_cover_every_incident(demo_client, demo_keys, demo_engine):
    doc = demo_client.get(
        "/grids/411002/stats", headers=demo_keys["viewer"], params={"category": "0401"}
    ).json()
    with demo_engine.connect() as conn:
        expected = conn.execute(
            text("SELECT count(*) FROM incident WHERE category = '0401'")
        ).scalar_one()
    assert doc["totals"]["incidents"] == expected
