"""API keys and roles, public boundaries, CORS, size bounds and error bodies."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.errors import NotFoundError
from app.services.security import ROLES, create_api_key, list_api_keys, revoke_api_key
from tests.helpers import make_client

pytestmark = pytest.mark.db


@pytest.fixture
def keys(pg_engine):
    """Keys on the empty test database, removed afterwards (clean_db does not know them)."""
    made = {role: create_api_key(pg_engine, role, f"security-test-{role}") for role in ROLES}
    yield made
    with pg_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_key WHERE name LIKE 'security-test-%'"))


def test_keys_are_stored_hashed_listed_and_revoked(pg_engine, keys):
    with pg_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT key_hash, prefix FROM api_key WHERE name LIKE 'security-test-%'")
        ).all()
    assert all(keys[r] not in {h for h, _ in stored} for r in ROLES)  # never in clear
    assert {p for _, p in stored} == {keys[r][:9] for r in ROLES}
    listed = {k["name"]: k for k in list_api_keys(pg_engine)}
    viewer = listed["security-test-viewer"]
    assert viewer["role"] == "viewer" and viewer["revoked_at"] is None
    revoke_api_key(pg_engine, viewer["id"])
    revoke_api_key(pg_engine, viewer["id"])  # again: no error, first time kept
    assert {k["name"]: k for k in list_api_keys(pg_engine)}["security-test-viewer"][
        "revoked_at"
    ] is not None
    with pytest.raises(NotFoundError):
        revoke_api_key(pg_engine, 10**9)


def test_unknown_role_is_refused(pg_engine):
    from gis.errors import GridmapError

    with pytest.raises(GridmapError, match="viewer, operator, admin"):
        create_api_key(pg_engine, "root")


def test_role_matrix(demo_client, demo_keys):
    """Boundaries: anyone; incidents: viewer; writes: operator; activation: admin."""
    cases = [
        ("GET", "/collections/grids/items", None, 200),
        ("GET", "/incidents", None, 401),
        ("GET", "/incidents", "viewer", 200),
        ("POST", "/incidents/999999999/transitions", "viewer", 403),
        ("POST", "/incidents/999999999/transitions", "operator", 404),
        ("POST", "/generations/no-such/activate", "operator", 403),
        ("POST", "/generations/no-such/activate", "admin", 404),
    ]
    for method, path, role, status in cases:
        headers = demo_keys[role] if role else {}
        body = {"status": "registered"} if "transitions" in path else None
        response = demo_client.request(method, path, headers=headers, json=body)
        assert response.status_code == status, (method, path, role, response.text)


def test_bearer_tokens_and_bad_keys(demo_client, demo_keys):
    key = demo_keys["viewer"]["X-API-Key"]
    assert (
        demo_client.get("/incidents", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    )
    wrong = demo_client.get("/incidents", headers={"X-API-Key": "gm_forged"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.json()["detail"]
    # A wrong key is an error even where no key is needed: the caller meant to use one.
    assert demo_client.get("/collections", headers={"X-API-Key": "x"}).status_code == 401


def test_revoked_keys_stop_working(demo_client, demo_engine):
    key = create_api_key(demo_engine, "viewer", "security-test-revoked")
    try:
        assert demo_client.get("/incidents", headers={"X-API-Key": key}).status_code == 200
        key_id = next(
            k["id"] for k in list_api_keys(demo_engine) if k["name"] == "security-test-revoked"
        )
        revoke_api_key(demo_engine, key_id)
        assert demo_client.get("/incidents", headers={"X-API-Key": key}).status_code == 401
    finally:
        with demo_engine.begin() as conn:
            conn.execute(text("DELETE FROM api_key WHERE name = 'security-test-revoked'"))


def test_private_boundaries_cors_and_body_limit(pg_engine, keys, clean_db):
    client = make_client(
        pg_engine,
        public_boundaries=False,
        max_body_bytes=2048,
        cors_origins=["https://intranet.example"],
    )
    with client:
        assert client.get("/lookup?lon=113.8&lat=34.0").status_code == 401
        assert client.get("/collections/grids/items").status_code == 401
        assert client.get("/grids/411002001001001").status_code == 401
        viewer = {"X-API-Key": keys["viewer"]}
        no_areas = client.get("/lookup?lon=113.8&lat=34.0", headers=viewer)
        assert no_areas.status_code == 409 and "gridmap demo" in no_areas.json()["detail"]
        assert client.get("/health").json() == {"status": "no_generation", "generation": None}
        preflight = client.options(
            "/lookup",
            headers={"Origin": "https://intranet.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers["access-control-allow-origin"] == "https://intranet.example"
        big = client.post(
            "/lookup", headers=viewer, content=b'{"lon": [' + b"1.0," * 2000 + b'1.0], "lat": []}'
        )
        assert big.status_code == 413 and "2,048 bytes" in big.json()["detail"]
        chunked = client.post(
            "/lookup", headers=viewer, content=iter([b'{"lon": [' + b"1.0," * 300, b"1.0," * 300])
        )
        assert chunked.status_code == 413 and "2,048 bytes" in chunked.json()["detail"]


def test_error_bodies_are_uniform(demo_client):
    for response in (
        demo_client.get("/no/such/path"),
        demo_client.delete("/lookup"),
        demo_client.get("/lookup?lon=1"),
    ):
        assert response.status_code in (404, 405, 422)
        assert set(response.json()) == {"detail"}
