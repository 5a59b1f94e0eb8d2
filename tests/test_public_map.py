"""The public map policy, staff phones and the canary.

Anonymous visitors get boundaries, codes, names and the published staff (names and
roles by default), never an incident-derived layer and never a phone number;
``GRIDMAP_PUBLIC_MAP=off`` sends them to /login. Keyed (or signed-in) callers get the
incidents of their scope. The canary is an incident outside every grid: drawn on the
unscoped signed-in map, absent from every anonymous answer and from a street's.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.config import ApiSettings, MapSettings, Settings
from app.db import keys as key_rows
from app.main import create_app
from app.services.security import KEY_PREFIX, hash_key
from tests.helpers import engine_url

pytestmark = pytest.mark.db

#: A mainland mobile number: what no anonymous answer may hold.
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
#: Layers derived from incidents, by their key in the page's registry.
INCIDENT_LAYERS = {"choropleth", "hotspots", "outside", "clusters", "heat", "incidents"}


def _app(engine: Engine, **api) -> TestClient:
    settings = Settings(
        database_url=engine_url(engine),
        api=ApiSettings(index_refresh_seconds=0, **api),
        maps=MapSettings(warm_on_startup=False, permutations=0, cluster_points=500),
    )
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client(demo_engine) -> Iterator[TestClient]:
    with _app(demo_engine) as started:
        yield started


@dataclass(frozen=True)
class Canary:
    id: int
    description: str
    lon: float
    lat: float

    def traces(self) -> list[re.Pattern]:
        """What of it may not appear: its text, either coordinate as a whole number, its id
        as an incident's id."""
        number = r"(?<![\d.]){}(?!\d)"
        return [
            re.compile(re.escape(self.description)),
            re.compile(number.format(re.escape(repr(self.lon)))),
            re.compile(number.format(re.escape(repr(self.lat)))),
            re.compile(rf'"(id|service_request_id)":\s*"?{self.id}\b'),
            # (a refusal naming the id asked for is an echo, not the incident)
            re.compile(rf"incident {self.id}\b(?! is outside the area)"),
        ]

    def found_in(self, body: str) -> list[str]:
        """The traces in ``body``, each with 60 characters around it (to see where)."""
        return [
            body[max(m.start() - 60, 0) : m.end() + 60]
            for trace in self.traces()
            if (m := trace.search(body))
        ]


@pytest.fixture(scope="module")
def keys(demo_engine) -> Iterator[dict[str, dict[str, str]]]:
    """An unscoped admin and viewer, and a viewer scoped to the first street."""
    tag = f"public-map-{uuid.uuid4().hex[:8]}"
    with demo_engine.begin() as conn:
        street = conn.execute(
            text("SELECT min(code) FROM area WHERE level = 'street'")
        ).scalar_one()
        out: dict[str, dict[str, str]] = {}
        for name, role, area in (
            ("admin", "admin", None),
            ("viewer", "viewer", None),
            ("street", "viewer", street),
        ):
            key = KEY_PREFIX + secrets.token_urlsafe(32)
            key_rows.insert_key(conn, hash_key(key), key[:9], role, f"{tag}-{name}", area)
            out[name] = {"X-API-Key": key}
    out["street_code"] = {"code": street}
    yield out
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_key WHERE name LIKE :t"), {"t": f"{tag}-%"})


@pytest.fixture(scope="module")
def canary(client, keys, demo_engine) -> Iterator[Canary]:
    """An incident outside every grid, east of the district (deleted afterwards)."""
    with demo_engine.connect() as conn:
        east, north = conn.execute(
            text("SELECT ST_XMax(geom), ST_YMax(geom) FROM area WHERE level = 'district'")
        ).one()
    lon, lat = round(east + 0.0137, 4), round(north - 0.0071, 4)
    description = f"CANARY-{uuid.uuid4().hex}"
    source = f"canary_{uuid.uuid4().hex[:8]}"
    body = {
        "source": source,
        "external_id": "c1",
        "category": "0101",
        "description": description,
        "lon": lon,
        "lat": lat,
    }
    created = client.post("/incidents", json=body, headers=keys["admin"])
    assert created.status_code == 201, created.text
    assert created.json()["assignment"]["grid"] is None  # outside every grid
    yield Canary(created.json()["id"], description, lon, lat)
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM incident WHERE source = :s"), {"s": source})
    client.app.state.gridmap.version.check()


def registry(html: str) -> tuple[set[str], dict]:
    """The layer keys and the meta the page publishes (``gridmapRegister``)."""
    start = html.index("gridmapRegister(")
    layers = set(re.findall(r'"?([a-z_]+)"?\s*:\s*[a-z_]+[0-9a-f_]*,', html[start : start + 4000]))
    meta_start = html.index("}, {", start) + 3
    meta, _ = json.JSONDecoder().raw_decode(html[meta_start:])
    return layers, meta


# -- the anonymous map ------------------------------------------------------------------
def test_the_anonymous_map_draws_boundaries_and_no_incident_layer(client, canary):
    response = client.get("/map")
    assert response.status_code == 200
    html = response.text
    layers, meta = registry(html)
    assert {"grids", "street_outlines", "community_outlines"} <= layers
    assert not layers & INCIDENT_LAYERS, layers
    assert set(meta) == {"generation", "grids", "defects"}
    assert "outside_incident" not in meta["defects"]
    assert canary.found_in(html) == []
    assert PHONE.findall(html) == []
    # no counts, rates or Gi* in the tooltips, no hot-spot legend, but the staff by name
    assert "事件 incidents" not in html and "Gi*" not in html and "每千人" not in html
    assert "网格员 staff" in html and "网格长 " in html
    assert "incidents selected" not in html and "网格信息公示" in html
    assert "private" not in response.headers["cache-control"]
    assert "Cookie" in response.headers["vary"]


def test_a_keyed_caller_gets_every_layer_and_the_canary_drawn(client, keys, canary):
    html = client.get("/map", headers=keys["viewer"]).text
    layers, meta = registry(html)
    assert INCIDENT_LAYERS - {"incidents"} <= layers
    assert repr(canary.lon) in html and repr(canary.lat) in html  # drawn without sampling
    assert meta["selected"] > 0


def test_a_street_sees_its_incidents_only_and_no_hot_spots(client, keys, canary, demo_engine):
    html = client.get("/map", headers=keys["street"]).text
    layers, meta = registry(html)
    assert {"clusters", "heat", "choropleth"} <= layers and "hotspots" not in layers
    assert canary.found_in(html) == []
    with demo_engine.connect() as conn:
        mine = conn.execute(
            text("SELECT count(*) FROM incident_current WHERE street_code = :s"),
            {"s": keys["street_code"]["code"]},
        ).scalar_one()
    assert meta["selected"] == mine


def test_the_page_cache_keeps_audiences_apart(client, keys, canary):
    signed = client.get("/map", headers=keys["viewer"])
    public = client.get("/map")
    assert signed.headers["etag"] != public.headers["etag"]
    assert canary.found_in(public.text) == [] and repr(canary.lon) in signed.text
    # the signed-in page's validator does not open it to an anonymous request
    again = client.get("/map", headers={"If-None-Match": signed.headers["etag"]})
    assert again.status_code == 200 and canary.found_in(again.text) == []
    assert "private" in signed.headers["cache-control"]


def test_the_grid_page_of_an_anonymous_visitor_has_no_incidents_and_no_phones(
    client, keys, demo_engine
):
    with demo_engine.connect() as conn:
        grid, other = conn.execute(
            text(
                "SELECT (SELECT min(area_code) FROM staff s JOIN area a ON a.code = s.area_code "
                "WHERE a.level = 'grid' AND a.code LIKE :s || '%' AND s.phone IS NOT NULL), "
                "(SELECT max(code) FROM area WHERE level = 'grid')"
            ),
            {"s": keys["street_code"]["code"]},
        ).one()
    public = client.get(f"/map/grids/{grid}")
    assert public.status_code == 200
    layers, _ = registry(public.text)
    assert not layers & INCIDENT_LAYERS and PHONE.findall(public.text) == []
    signed = client.get(f"/map/grids/{grid}", headers=keys["viewer"]).text
    assert "incidents" in registry(signed)[0] and PHONE.findall(signed)
    assert client.get(f"/map/grids/{grid}", headers=keys["street"]).status_code == 200
    refused = client.get(f"/map/grids/{other}", headers=keys["street"])
    assert refused.status_code == 403 and "outside the area" in refused.json()["detail"]


def test_the_redesign_page_needs_a_caller(client, keys):
    response = client.get("/map/redesign/nope?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmap%2Fredesign%2Fnope%3Fx%3D1"
    assert client.get("/map/redesign/nope", headers=keys["viewer"]).status_code == 404


# -- the analyses -----------------------------------------------------------------------
def test_coverage_reports_the_canary_to_unscoped_callers_only(client, keys, canary):
    public = client.get("/coverage")
    assert public.status_code == 200
    assert "outside_incident" not in public.text and canary.found_in(public.text) == []
    street = client.get("/coverage", headers=keys["street"]).json()
    assert street["summary"]["defects"]["outside_incident"] == 0
    full = client.get("/coverage?types=outside_incident", headers=keys["viewer"]).json()
    points = [f["geometry"]["coordinates"] for f in full["features"]]
    assert [canary.lon, canary.lat] in points


def test_anonymous_hotspots_are_refused_with_the_reason(client):
    response = client.get("/hotspots")
    assert response.status_code == 401
    assert "viewer" in response.json()["detail"]


# -- phones -----------------------------------------------------------------------------
def _staffed_point(demo_engine) -> tuple[float, float]:
    with demo_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom)) "
                "FROM area a JOIN staff s ON s.area_code = a.code "
                "WHERE a.level = 'grid' AND s.phone IS NOT NULL ORDER BY a.code LIMIT 1"
            )
        ).one()


def test_lookup_gives_phones_to_callers_only(client, keys, demo_engine):
    lon, lat = _staffed_point(demo_engine)
    public = client.get(f"/lookup?lon={lon}&lat={lat}")
    assert public.status_code == 200
    staff = public.json()["grid"]["staff"]
    assert staff and all(s["phone"] is None and s["name"] for s in staff)
    assert PHONE.findall(public.text) == []
    keyed = client.get(f"/lookup?lon={lon}&lat={lat}", headers=keys["viewer"]).json()
    assert all(s["phone"] for s in keyed["grid"]["staff"])
    batch = client.post("/lookup", json={"lon": [lon], "lat": [lat]})
    assert batch.status_code == 200 and PHONE.findall(batch.text) == []


# -- the policy settings ----------------------------------------------------------------
@pytest.fixture(scope="module")
def closed(demo_engine) -> Iterator[TestClient]:
    """GRIDMAP_PUBLIC_MAP=off, GRIDMAP_PUBLIC_STAFF=roles."""
    with _app(demo_engine, public_map="off", public_staff="roles") as started:
        yield started


def test_public_map_off_sends_anonymous_visitors_to_sign_in(closed, keys, demo_engine):
    response = closed.get("/map?measure=per_km2", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmap%3Fmeasure%3Dper_km2"
    grid = closed.get("/map/grids/411002003001003", follow_redirects=False)
    assert (
        grid.status_code == 303
        and "next=%2Fmap%2Fgrids%2F411002003001003" in grid.headers["location"]
    )
    assert closed.get("/map", headers=keys["viewer"]).status_code == 200
    lon, lat = _staffed_point(demo_engine)
    staff = closed.get(f"/lookup?lon={lon}&lat={lat}").json()["grid"]["staff"]
    assert staff and all(s["name"] is None and s["phone"] is None and s["role"] for s in staff)


# -- the canary in every anonymous answer -----------------------------------------------
def _get_routes(app) -> list[str]:
    """Every GET path the app documents (the map pages too)."""
    return sorted(path for path, ops in app.openapi()["paths"].items() if "get" in ops)


def test_no_anonymous_get_carries_the_canary(client, canary, keys):
    values = {
        "collection_id": "incidents",
        "feature_id": str(canary.id),
        "incident_id": str(canary.id),
        "service_request_id": str(canary.id),
        "code": "411002003001003",
        "ref": "g1",
        "theme": "police",
        "z": "12",
        "x": "3342",
        "y": "1652",
        "layer": "grids",
        "job_id": "1",
        "service_code": "0101",
    }
    routes = _get_routes(client.app)
    assert "/map" in routes and "/incidents/{incident_id}" in routes
    scanned = 0
    for route in routes:
        url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "1"), route)
        for query in ("", "?limit=10000"):  # (coordinates in the query would be echoed)
            for headers in ({}, keys["street"]):
                response = client.get(url + query, headers=headers)
                assert response.status_code < 500, (url, response.text[:300])
                assert canary.found_in(response.text) == [], (url + query, headers)
                scanned += 1
    assert scanned > 50
    # the scan can fail: the same id answers a keyed, unscoped caller
    found = client.get(f"/incidents/{canary.id}", headers=keys["viewer"])
    assert canary.found_in(found.text)
