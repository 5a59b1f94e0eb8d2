"""Generations through the API: list, look up in an inactive one, activate (admin).

A small database of two generations, each a few communities of the demo, keeps
activation (which re-assigns every incident) fast and leaves the demo alone.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db import repo
from app.services.security import create_api_key
from tests.helpers import demo_point, load_generation, make_client, small_district

pytestmark = pytest.mark.db

OLD = ["411002003001"]  # generation g1 (active first)
NEW = ["411002003002"]  # generation g2
OLD_GRID, NEW_GRID = "411002003001003", "411002003002001"


@pytest.fixture
def two_generations(clean_db, demo):
    load_generation(clean_db, "g1", small_district(demo, OLD))
    load_generation(clean_db, "g2", small_district(demo, NEW))
    keys = {
        role: {"X-API-Key": create_api_key(clean_db, role, f"gen-test-{role}")}
        for role in ("operator", "admin")
    }
    yield clean_db, keys
    with clean_db.begin() as conn:
        conn.execute(text("DELETE FROM api_key WHERE name LIKE 'gen-test-%'"))


def test_activation_switches_lookups_and_reassigns(two_generations, demo):
    engine, keys = two_generations
    lon, lat = demo_point(demo, NEW_GRID)
    with make_client(engine) as client:
        listed = client.get("/generations").json()
        assert [(g["label"], g["is_active"]) for g in listed] == [("g1", True), ("g2", False)]
        assert listed[1]["counts"]["grid"] == (demo.grids["parent_code"] == NEW[0]).sum()
        assert client.get("/generations/g2").json()["label"] == "g2"
        assert client.get("/generations/g9").status_code == 404

        before = client.get("/lookup", params={"lon": lon, "lat": lat}).json()
        assert before["status"] == "outside" and before["generation"]["label"] == "g1"
        inactive = client.get("/lookup", params={"lon": lon, "lat": lat, "generation": "g2"})
        assert inactive.json()["grid"]["code"] == NEW_GRID

        made = client.post(
            "/incidents",
            headers=keys["operator"],
            json={
                "source": "patrol",
                "external_id": "gen-1",
                "category": "0104",
                "lon": lon,
                "lat": lat,
            },
        ).json()
        assert made["assignment"]["status"] == "outside"

        assert client.post("/generations/g2/activate", headers=keys["operator"]).status_code == 403
        report = client.post("/generations/g2/activate", headers=keys["admin"]).json()
        assert report == {"generation": "g2", "assigned": 1, "by_status": {"inside": 1}}

        after = client.get("/lookup", params={"lon": lon, "lat": lat}).json()
        assert after["grid"]["code"] == NEW_GRID and after["generation"]["label"] == "g2"
        read = client.get(f"/incidents/{made['id']}", headers=keys["operator"]).json()
        assert read["assignment"]["grid"]["code"] == NEW_GRID
        old = client.get(f"/grids/{OLD_GRID}", params={"generation": "g1"})
        assert old.status_code == 200
        assert client.get(f"/grids/{OLD_GRID}").status_code == 404  # not in g2
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT g.label, a.assign_status FROM incident_assignment a "
                "JOIN generation g ON g.id = a.generation_id ORDER BY g.id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("g1", "outside"), ("g2", "inside")]  # history kept


def test_activation_elsewhere_is_picked_up(two_generations, demo):
    engine, _ = two_generations
    lon, lat = demo_point(demo, NEW_GRID)
    with make_client(engine) as client:
        registry = client.app.state.gridmap.registry
        assert registry.refresh() is False  # nothing changed
        with engine.begin() as conn:  # as `gridmap generations activate` would
            repo.activate_generation(conn, repo.get_generation(conn, "g2").id)
        assert registry.refresh() is True
        assert (
            client.get("/lookup", params={"lon": lon, "lat": lat}).json()["grid"]["code"]
            == NEW_GRID
        )


def test_without_a_generation_the_api_says_what_to_do(clean_db):
    with make_client(clean_db) as client:
        for path in ("/lookup?lon=113.8&lat=34.0", "/collections", "/grids/411002"):
            response = client.get(path)
            assert response.status_code == 409, path
            assert "gridmap demo" in response.json()["detail"]
        assert client.get("/generations").json() == []
