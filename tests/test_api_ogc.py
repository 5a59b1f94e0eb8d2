"""OGC API – Features on the demo: landing page, collections, items, paging, filters, CRS."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import box, shape

pytestmark = pytest.mark.db

CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
BBOX = "113.80974,34.01723,113.83114,34.03863"


def test_landing_page_links_to_everything(demo_client):
    links = {link["rel"]: link["href"] for link in demo_client.get("/").json()["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert demo_client.get(links["service-desc"]).status_code == 200
    classes = demo_client.get("/conformance").json()["conformsTo"]
    assert any(c.endswith("/conf/geojson") for c in classes)


def test_collections_have_extents_and_item_links(demo_client, demo):
    doc = demo_client.get("/collections").json()
    ids = [c["id"] for c in doc["collections"]]
    assert ids == ["streets", "communities", "grids", "micro_grids", "incidents"]
    grids = demo_client.get("/collections/grids").json()
    minx, miny, maxx, maxy = demo.grids.total_bounds
    assert grids["extent"]["spatial"]["bbox"][0] == pytest.approx([minx, miny, maxx, maxy])
    assert any(link["rel"] == "items" for link in grids["links"])


def test_unknown_collection_is_404(demo_client):
    response = demo_client.get("/collections/parcels/items")
    assert response.status_code == 404
    assert "streets, communities" in response.json()["detail"]


def test_items_page_through_all_grids(demo_client):
    response = demo_client.get("/collections/grids/items")
    assert response.headers["content-type"] == "application/geo+json"
    first = response.json()
    assert (first["numberMatched"], first["numberReturned"]) == (620, 10)  # default limit 10
    rels = {link["rel"]: link["href"] for link in first["links"]}
    assert "prev" not in rels
    second = demo_client.get(rels["next"]).json()
    assert second["features"][0]["id"] > first["features"][-1]["id"]
    assert any(link["rel"] == "prev" for link in second["links"])
    last = demo_client.get("/collections/grids/items?limit=100&offset=600").json()
    assert last["numberReturned"] == 20
    assert not any(link["rel"] == "next" for link in last["links"])
    beyond = demo_client.get("/collections/grids/items?offset=5000").json()
    assert (beyond["numberMatched"], beyond["numberReturned"]) == (620, 0)


def test_limit_is_bounded(demo_client):
    assert demo_client.get("/collections/grids/items?limit=10000").status_code == 200
    response = demo_client.get("/collections/grids/items?limit=10001")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "limit"


def test_bbox_returns_exactly_the_intersecting_grids(demo_client, demo):
    doc = demo_client.get(f"/collections/grids/items?bbox={BBOX}&limit=1000").json()
    window = box(*map(float, BBOX.split(",")))
    expected = set(demo.grids.loc[demo.grids.intersects(window), "code"])
    assert {f["id"] for f in doc["features"]} == expected
    assert doc["numberMatched"] == len(expected) >= 100


def test_bbox_in_cgcs2000_takes_latitude_first(demo_client):
    minx, miny, maxx, maxy = BBOX.split(",")
    lat_first = ",".join((miny, minx, maxy, maxx))
    plain = demo_client.get(f"/collections/grids/items?bbox={BBOX}&limit=1").json()
    cgcs = demo_client.get(
        "/collections/grids/items", params={"bbox": lat_first, "limit": 1, "bbox-crs": CGCS2000}
    ).json()
    assert cgcs["numberMatched"] == plain["numberMatched"]
    wrong = demo_client.get("/collections/grids/items", params={"bbox": BBOX, "bbox-crs": CGCS2000})
    assert wrong.status_code == 422 and "latitude first" in wrong.json()["detail"]


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "1,2,3,4,5", "0,95,1,96"])
def test_malformed_bbox_is_422(demo_client, bbox):
    assert demo_client.get(f"/collections/grids/items?bbox={bbox}").status_code == 422


def test_output_crs_flips_axes_and_says_so(demo_client):
    plain = demo_client.get("/collections/grids/items/411002001001001").json()
    flipped = demo_client.get("/collections/grids/items/411002001001001", params={"crs": CGCS2000})
    assert flipped.headers["content-crs"] == f"<{CGCS2000}>"
    x, y = plain["geometry"]["coordinates"][0][0][0]
    assert flipped.json()["geometry"]["coordinates"][0][0][0] == [y, x]


def test_area_filters(demo_client, demo):
    community = "411002003001"
    doc = demo_client.get(f"/collections/grids/items?parent={community}&limit=100").json()
    assert {f["id"] for f in doc["features"]} == set(
        demo.grids.loc[demo.grids["parent_code"] == community, "code"]
    )
    one = demo_client.get("/collections/grids/items?code=411002003001003").json()
    assert [f["id"] for f in one["features"]] == ["411002003001003"]
    kinds = demo_client.get("/collections/grids/items?kind=dedicated&limit=100").json()
    assert kinds["numberMatched"] == (demo.grids["kind"] == "dedicated").sum() > 0
    streets = demo_client.get("/collections/streets/items?generation=demo").json()
    assert streets["numberMatched"] == 8


def test_filters_of_the_other_kind_are_refused(demo_client, demo_keys):
    assert demo_client.get("/collections/grids/items?status=closed").status_code == 422
    response = demo_client.get(
        "/collections/incidents/items?parent=411002", headers=demo_keys["viewer"]
    )
    assert response.status_code == 422 and "parent" in response.json()["detail"]


def test_unknown_generation_is_404(demo_client):
    response = demo_client.get("/collections/grids/items?generation=nope")
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_one_area_and_its_links(demo_client):
    doc = demo_client.get("/collections/micro_grids/items/411002003001003001").json()
    assert doc["properties"]["parent_code"] == "411002003001003"
    assert shape(doc["geometry"]).is_valid
    assert {link["rel"] for link in doc["links"]} == {"self", "collection"}
    assert demo_client.get("/collections/grids/items/411002003001003001").status_code == 404


def test_incidents_need_a_viewer_key(demo_client, demo_keys):
    response = demo_client.get("/collections/incidents/items")
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert demo_client.get("/collections/incidents/items/50001").status_code == 401


def test_incident_items_with_filters(demo_client, demo_keys, demo_engine):
    from sqlalchemy import text

    viewer = demo_keys["viewer"]
    params = {
        "category": "04",
        "source": "police_110",
        "datetime": "2023-03-01/2023-03-31",
        "limit": 1000,
    }
    doc = demo_client.get("/collections/incidents/items", params=params, headers=viewer).json()
    with demo_engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT count(*) FROM incident WHERE category LIKE '04%' AND source = 'police_110' "
                "AND reported_at >= '2023-03-01T00:00:00+08:00' "
                "AND reported_at < '2023-04-01T00:00:00+08:00'"
            )
        ).scalar_one()
    assert doc["numberMatched"] == expected > 0
    for feature in doc["features"]:
        assert feature["properties"]["category"].startswith("04")
        assert feature["properties"]["source"] == "police_110"
    grid = doc["features"][0]["properties"]["grid_code"]
    in_grid = demo_client.get(
        "/collections/incidents/items", params={"grid": grid}, headers=viewer
    ).json()
    assert all(f["properties"]["grid_code"] == grid for f in in_grid["features"])
    one = demo_client.get(
        f"/collections/incidents/items/{doc['features'][0]['id']}", headers=viewer
    ).json()
    assert one["id"] == doc["features"][0]["id"]
    assert demo_client.get("/collections/incidents/items/abc", headers=viewer).status_code == 404


def test_incident_bbox_and_unlocated(demo_client, demo_keys):
    viewer = demo_keys["viewer"]
    doc = demo_client.get(
        f"/collections/incidents/items?bbox={BBOX}&limit=50", headers=viewer
    ).json()
    window = box(*map(float, BBOX.split(",")))
    assert all(window.intersects(shapely.geometry.shape(f["geometry"])) for f in doc["features"])
    unlocated = demo_client.get(
        "/collections/incidents/items?location_status=unlocated", headers=viewer
    ).json()
    assert all(f["geometry"] is None for f in unlocated["features"])
