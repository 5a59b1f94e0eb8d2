"""Area scope: every incident read and write honours the caller's unified-code scope.

A matrix of callers — anonymous, an unscoped viewer, a viewer scoped to one street,
an operator scoped to one grid, an unscoped admin — against every endpoint that
reads or writes incidents, through the API with keys. Pages are in
``test_public_map.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text

from app.db import keys as key_rows
from app.db import queries
from app.errors import PermissionDeniedError
from app.services.scope import check_area, check_incident, on_branch, visible_staff
from app.services.security import KEY_PREFIX, Principal, hash_key

pytestmark = pytest.mark.db
ACTIVE = "(SELECT id FROM generation WHERE is_active) BETWEEN generation_low AND generation_high"


# -- the rule, without a database ------------------------------------------------------
def test_scope_is_a_prefix_of_the_grid_code_and_outside_incidents_are_unscoped_only():
    street = Principal(None, "u", "viewer", area="411002003")
    assert street.sees("411002003001003") and not street.sees("411002004001001")
    assert not street.sees(None)  # outside every grid
    assert Principal(None, "u", "viewer").sees(None)
    check_incident(Principal(None, "u", "viewer"), None, 1)
    with pytest.raises(PermissionDeniedError, match="outside the area 411002003"):
        check_incident(street, None, 7)
    # an area containing the scope (the district) is on its branch; a sibling is not
    assert on_branch("411002003", "411002") and on_branch("411002003", "411002003001")
    check_area(street, "411002")
    with pytest.raises(PermissionDeniedError):
        check_area(street, "411002004")


def test_phones_go_to_signed_in_callers_within_scope_only():
    staff = [{"name": "张三", "role": "grid_leader", "phone": "15912345678"}]
    grid = "411002003001003"
    assert visible_staff(staff, grid, Principal(1, "k", "viewer"), "names")[0]["phone"]
    inside = Principal(1, "k", "viewer", area="411002003")
    assert visible_staff(staff, grid, inside, "none")[0]["phone"] == "15912345678"
    other = Principal(1, "k", "viewer", area="411002004")
    assert visible_staff(staff, grid, other, "names") == [
        {"name": "张三", "role": "grid_leader", "phone": None}
    ]
    assert visible_staff(staff, grid, None, "roles") == [
        {"name": None, "role": "grid_leader", "phone": None}
    ]
    assert visible_staff(staff, grid, None, "none") == []


# -- the demo's areas and callers -------------------------------------------------------
@dataclass(frozen=True)
class Areas:
    district: str
    street: str  # the street-scoped viewer's
    grid: str  # the grid-scoped operator's, inside ``street``
    other_street: str
    other_grid: str  # inside ``other_street``
    #: an incident id in ``grid``, one in ``street`` but not ``grid``, one in ``other_grid``
    in_grid: int
    in_street: int
    elsewhere: int


@pytest.fixture(scope="module")
def areas(demo_engine: Engine) -> Areas:
    with demo_engine.connect() as conn:
        district = conn.execute(
            text(f"SELECT code FROM area WHERE level = 'district' AND {ACTIVE}")
        ).scalar_one()
        streets = conn.execute(
            text(f"SELECT code FROM area WHERE level = 'street' AND {ACTIVE} ORDER BY code LIMIT 2")
        ).scalars()
        street, other = list(streets)

        def one_incident(where: str, **params) -> tuple[int, str]:
            return tuple(  # type: ignore[return-value]
                conn.execute(
                    text(
                        f"SELECT id, grid_code FROM incident_current WHERE {where} "
                        "ORDER BY id LIMIT 1"
                    ),
                    params,
                ).one()
            )

        in_grid, grid = one_incident("street_code = :s", s=street)
        in_street, _ = one_incident("street_code = :s AND grid_code <> :g", s=street, g=grid)
        elsewhere, other_grid = one_incident("street_code = :s", s=other)
    return Areas(district, street, grid, other, other_grid, in_grid, in_street, elsewhere)


def _insert_key(engine: Engine, role: str, area: str | None, name: str) -> dict[str, str]:
    import secrets

    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        key_rows.insert_key(conn, hash_key(key), key[:9], role, name, area)
    return {"X-API-Key": key}


#: caller → (role, scope attribute of Areas or None)
CALLERS = {
    "anonymous": None,
    "viewer": ("viewer", None),
    "street_viewer": ("viewer", "street"),
    "grid_operator": ("operator", "grid"),
    "admin": ("admin", None),
}


@pytest.fixture(scope="module")
def callers(demo_engine: Engine, areas: Areas) -> Iterator[dict[str, dict[str, str]]]:
    """Headers of each caller (keys inserted for this module, deleted afterwards)."""
    tag = f"scope-test-{uuid.uuid4().hex[:8]}"
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for caller, spec in CALLERS.items():
        if spec is not None:
            role, scope = spec
            area = getattr(areas, scope) if scope else None
            headers[caller] = _insert_key(demo_engine, role, area, f"{tag}-{caller}")
    yield headers
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_key WHERE name LIKE :t"), {"t": f"{tag}-%"})


def scope_of(caller: str, areas: Areas) -> str | None:
    spec = CALLERS[caller]
    return getattr(areas, spec[1]) if spec and spec[1] else None


def sees(caller: str, areas: Areas, grid_code: str | None) -> bool:
    scope = scope_of(caller, areas)
    return scope is None or (grid_code is not None and grid_code.startswith(scope))


KEYED = [c for c in CALLERS if c != "anonymous"]


# -- lists: only in-scope rows ----------------------------------------------------------
LISTS = {
    "ogc": "/collections/incidents/items?limit=2000",
    "incidents": "/incidents?limit=2000",
    "district_incidents": "/grids/{district}/incidents?limit=2000",
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("endpoint", list(LISTS))
def test_incident_lists_hold_only_the_callers_area(demo_client, callers, areas, caller, endpoint):
    url = LISTS[endpoint].format(district=areas.district)
    response = demo_client.get(url, headers=callers[caller])
    if caller == "anonymous":
        assert response.status_code == 401
        return
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert features, "the demo has incidents in every scope"
    grids = [f["properties"]["grid_code"] for f in features]
    assert all(sees(caller, areas, g) for g in grids), (caller, endpoint)
    scope = scope_of(caller, areas)
    if scope is not None:
        with demo_client.app.state.gridmap.engine.connect() as conn:
            expected = conn.execute(
                text("SELECT count(*) FROM incident_current WHERE grid_code LIKE :p || '%'"),
                {"p": scope},
            ).scalar_one()
        assert response.json()["numberMatched"] == expected


@pytest.mark.parametrize("caller", KEYED)
def test_open311_lists_hold_only_the_callers_area(demo_client, callers, areas, caller):
    response = demo_client.get("/open311/v2/requests.json?page_size=1000", headers=callers[caller])
    assert response.status_code == 200
    ids = [int(r["service_request_id"]) for r in response.json()]
    assert ids
    with demo_client.app.state.gridmap.engine.connect() as conn:
        grids = dict(
            conn.execute(
                text("SELECT id, grid_code FROM incident_current WHERE id = ANY(:ids)"),
                {"ids": ids},
            ).all()
        )
    assert all(sees(caller, areas, grids[i]) for i in ids)
    # asking by id for another area's request gives nothing, not the request
    other = demo_client.get(
        f"/open311/v2/requests.json?service_request_id={areas.elsewhere}", headers=callers[caller]
    ).json()
    assert len(other) == (1 if sees(caller, areas, areas.other_grid) else 0)


# -- single objects: 403 outside the scope ----------------------------------------------
ONE = {
    "ogc_item": "/collections/incidents/items/{id}",
    "incident": "/incidents/{id}",
    "open311_request": "/open311/v2/requests/{id}.json",
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("endpoint", list(ONE))
@pytest.mark.parametrize("which", ["in_grid", "in_street", "elsewhere"])
def test_one_incident_is_refused_outside_the_callers_area(
    demo_client, callers, areas, caller, endpoint, which
):
    incident = getattr(areas, which)
    with demo_client.app.state.gridmap.engine.connect() as conn:
        _, grid = queries.incident_grid(conn, incident)
    response = demo_client.get(ONE[endpoint].format(id=incident), headers=callers[caller])
    if caller == "anonymous":
        assert response.status_code == 401
    elif sees(caller, areas, grid):
        assert response.status_code == 200, response.text
        assert str(incident) in response.text
    else:
        assert response.status_code == 403, response.text
        assert "outside the area" in response.json()["detail"]
        assert "description" not in response.text


# -- areas: 403 off the branch, filtered on it ------------------------------------------
@pytest.mark.parametrize("caller", KEYED)
@pytest.mark.parametrize("path", ["incidents", "stats"])
@pytest.mark.parametrize("target", ["grid", "other_grid", "street", "other_street", "district"])
def test_area_incidents_and_stats_follow_the_scope(
    demo_client, callers, areas, caller, path, target
):
    code = getattr(areas, target)
    response = demo_client.get(f"/grids/{code}/{path}", headers=callers[caller])
    scope = scope_of(caller, areas)
    if scope is not None and not on_branch(scope, code):
        assert response.status_code == 403, response.text
        return
    assert response.status_code == 200, response.text
    if path == "stats":
        total = response.json()["totals"]["incidents"]
        prefix = code if target != "district" else ""
        if scope is not None and scope.startswith(prefix):
            prefix = scope  # an area containing the scope: the scope's incidents only
        with demo_client.app.state.gridmap.engine.connect() as conn:
            expected = conn.execute(
                text("SELECT count(*) FROM incident_current WHERE grid_code LIKE :p || '%'"),
                {"p": prefix},
            ).scalar_one()
        assert total == expected
    else:
        grids = {f["properties"]["grid_code"] for f in response.json()["features"]}
        assert grids and all(sees(caller, areas, g) for g in grids)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_the_grid_record_counts_and_phones_follow_the_scope(demo_client, callers, areas, caller):
    response = demo_client.get(f"/grids/{areas.grid}", headers=callers[caller])
    assert response.status_code == 200
    props = response.json()["properties"]
    if caller == "anonymous":
        assert "incidents" not in props["counts"]
        assert props["staff"] and all(s["phone"] is None for s in props["staff"])
        assert all(s["name"] for s in props["staff"])  # names and roles: the default 公示
    else:
        assert props["counts"]["incidents"]["total"] > 0
        assert all(s["phone"] for s in props["staff"])  # every caller here sees this grid
    other = demo_client.get(f"/grids/{areas.other_grid}", headers=callers[caller]).json()
    in_scope = sees(caller, areas, areas.other_grid) and caller != "anonymous"
    assert ("incidents" in other["properties"]["counts"]) == in_scope
    assert any(s["phone"] for s in other["properties"]["staff"]) == in_scope


@pytest.mark.parametrize("caller", list(CALLERS))
def test_stats_report_rows_follow_the_scope(demo_client, callers, areas, caller):
    response = demo_client.get("/stats?level=grid", headers=callers[caller])
    if caller == "anonymous":
        assert response.status_code == 401
        return
    rows = response.json()["rows"][:-1]  # the last row is the total
    scope = scope_of(caller, areas)
    assert rows and all(sees(caller, areas, r["code"]) for r in rows)
    with demo_client.app.state.gridmap.engine.connect() as conn:
        expected = conn.execute(
            text("SELECT count(*) FROM incident_current WHERE grid_code LIKE :p || '%'"),
            {"p": scope or ""},
        ).scalar_one()
    assert response.json()["rows"][-1]["received"] == expected


@pytest.mark.parametrize("caller", list(CALLERS))
def test_hotspots_need_a_caller_and_keep_to_the_scope(demo_client, callers, areas, caller):
    response = demo_client.get("/hotspots?permutations=0&geometry=false", headers=callers[caller])
    if caller == "anonymous":
        assert response.status_code == 401
        assert "viewer" in response.json()["detail"]
        return
    if caller == "grid_operator":  # one grid: Gi* has no neighbours to compare
        assert response.status_code == 422 and "at least 3 grids" in response.text
        return
    assert response.status_code == 200, response.text
    codes = [f["id"] for f in response.json()["features"]]
    assert codes and all(sees(caller, areas, c) for c in codes)
    with demo_client.app.state.gridmap.engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT count(*) FROM area WHERE level = 'grid' "
                f"AND code LIKE :p || '%' AND {ACTIVE}"
            ),
            {"p": scope_of(caller, areas) or ""},
        ).scalar_one()
    assert len(codes) == grids


# -- writes -----------------------------------------------------------------------------
def _point_in(demo_client, grid: str) -> tuple[float, float]:
    with demo_client.app.state.gridmap.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                    f"FROM area WHERE code = :c AND {ACTIVE}) s"
                ),
                {"c": grid},
            ).one()
        )


def test_a_scoped_operator_creates_and_moves_incidents_of_its_area_only(
    demo_client, callers, areas, incident_source
):
    operator = callers["grid_operator"]
    lon, lat = _point_in(demo_client, areas.grid)
    mine = {"source": incident_source, "category": "0101", "lon": lon, "lat": lat}
    created = demo_client.post("/incidents", json={**mine, "external_id": "in"}, headers=operator)
    assert created.status_code == 201, created.text
    assert created.json()["assignment"]["grid"]["code"] == areas.grid
    lon, lat = _point_in(demo_client, areas.other_grid)
    elsewhere = {**mine, "external_id": "out", "lon": lon, "lat": lat}
    refused = demo_client.post("/incidents", json=elsewhere, headers=operator)
    assert refused.status_code == 403 and "outside the area" in refused.json()["detail"]
    with demo_client.app.state.gridmap.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT external_id FROM incident WHERE source = :s"), {"s": incident_source}
        ).scalars()
        assert list(stored) == ["in"]  # nothing of the refused request was stored
    # Open311 creation goes through the same rule
    form = {"service_code": "0101", "lat": lat, "long": lon}
    assert (
        demo_client.post("/open311/v2/requests.json", data=form, headers=operator).status_code
        == 403
    )
    # the closed loop: another area's incident cannot be moved
    step = {"status": "registered"}
    moved = demo_client.post(
        f"/incidents/{areas.elsewhere}/transitions", json=step, headers=operator
    )
    assert moved.status_code == 403
    own = created.json()["id"]
    moved = demo_client.post(f"/incidents/{own}/transitions", json=step, headers=operator)
    assert moved.status_code == 200 and moved.json()["status"] == "registered"


def test_the_scope_condition_can_use_the_grid_index(demo_engine, areas):
    """The range form of the prefix: the planner may answer it from incident_assignment_grid."""
    from sqlalchemy import select

    from app.db.queries import ASSIGNMENT, code_in_scope

    query = select(ASSIGNMENT.c.incident_id).where(
        code_in_scope(ASSIGNMENT.c.grid_code, areas.grid)
    )
    with demo_engine.connect() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            conn.execute(
                text("EXPLAIN " + str(query.compile(compile_kwargs={"literal_binds": True})))
            ).scalars()
        )
        found = conn.execute(query).scalars().all()
        expected = (
            conn.execute(
                text("SELECT incident_id FROM incident_assignment WHERE grid_code LIKE :p || '%'"),
                {"p": areas.grid},
            )
            .scalars()
            .all()
        )
    assert "incident_assignment_grid" in plan
    assert sorted(found) == sorted(expected) and found
