"""Redesign over HTTP: a background job with progress, a stored plan, activation by an admin."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from app.services.security import create_api_key
from tests.helpers import load_generation, make_client, small_district

pytestmark = pytest.mark.db

COMMUNITIES = ["411002003001", "411002003002", "411002003003"]


@pytest.fixture
def district(clean_db, demo):
    load_generation(clean_db, "g1", small_district(demo, COMMUNITIES))
    keys = {
        role: {"X-API-Key": create_api_key(clean_db, role, f"redesign-{role}")}
        for role in ("viewer", "operator", "admin")
    }
    keys["scoped"] = {
        "X-API-Key": create_api_key(clean_db, "admin", "redesign-scoped", area=COMMUNITIES[0])
    }
    yield clean_db, keys
    with clean_db.begin() as conn:
        conn.execute(text("DELETE FROM api_key WHERE name LIKE 'redesign-%'"))


def _wait(client, job_id, headers, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/redesign/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']}: {job['progress']}")


def test_plan_in_background_then_activate(district, demo):
    engine, keys = district
    grids = int(demo.grids["parent_code"].isin(COMMUNITIES).sum())
    target = grids - 3
    with make_client(engine) as client:
        assert client.post("/redesign/plans", json={"target": target}).status_code == 401
        assert (
            client.post(
                "/redesign/plans", json={"target": target}, headers=keys["viewer"]
            ).status_code
            == 403
        )
        accepted = client.post(
            "/redesign/plans",
            headers=keys["operator"],
            json={"target": target, "mode": "merge", "label": "plan-a"},
        )
        assert accepted.status_code == 202
        job = _wait(client, accepted.json()["id"], keys["viewer"])
        assert job["status"] == "done", job
        assert job["result"]["generation"] == "plan-a"
        assert job["result"]["metrics"]["k"] == target
        assert job["result"]["metrics"]["nesting_violations"] == 0

        # plans weigh the whole district's incidents: signed-in, unscoped callers only
        assert client.get("/redesign/plans").status_code == 401
        assert client.get("/redesign/plans/plan-a").status_code == 401
        assert client.get("/redesign/plans", headers=keys["scoped"]).json() == []
        assert client.get("/redesign/plans/plan-a", headers=keys["scoped"]).status_code == 403
        plans = client.get("/redesign/plans", headers=keys["viewer"]).json()
        assert [p["generation"] for p in plans] == ["plan-a"]
        plan = client.get(
            "/redesign/plans/plan-a", params={"lineage": True}, headers=keys["viewer"]
        ).json()
        assert plan["redesign_of"] == "g1" and not plan["active"]
        shares = {}
        for row in plan["lineage"]:
            shares[row["old_code"]] = shares.get(row["old_code"], 0) + row["area_share"]
        assert len(shares) == grids and all(abs(s - 1) < 1e-3 for s in shares.values())

        assert (
            client.post("/generations/plan-a/activate", headers=keys["operator"]).status_code == 403
        )
        assert client.post("/generations/plan-a/activate", headers=keys["admin"]).status_code == 200
        assert client.get("/redesign/plans/plan-a", headers=keys["viewer"]).json()["active"]


def test_infeasible_plan_fails_with_the_feasible_range(district):
    engine, keys = district
    with make_client(engine) as client:
        accepted = client.post(
            "/redesign/plans", headers=keys["operator"], json={"target": 1}
        )  # below the number of communities
        job = _wait(client, accepted.json()["id"], keys["viewer"])
        assert job["status"] == "failed" and "feasible" in job["error"]


def test_bad_requests_are_422_and_unknown_ids_404(district):
    engine, keys = district
    with make_client(engine) as client:
        for body in (
            {"target": 0},
            {"target": 10, "mode": "split"},
            {"target": 10, "label": "bad label!"},
            {"target": 10, "band": -1},
        ):
            response = client.post("/redesign/plans", headers=keys["operator"], json=body)
            assert response.status_code == 422, body
            assert "detail" in response.json()
        assert client.get("/redesign/jobs/nope", headers=keys["viewer"]).status_code == 404
        assert client.get("/redesign/plans/g1", headers=keys["viewer"]).status_code == 404
