"""Lookup (MapIt style) on the demo: one point, batches, CRSs, snapping, errors."""

from __future__ import annotations

import numpy as np
import pytest

from app.services.registry import assign_hierarchy, assign_point
from gis import crs as crs_mod
from tests.helpers import demo_point

pytestmark = pytest.mark.db

GRID = "411002003001003"


def _index(client):
    return client.app.state.gridmap.registry.active.index


def test_a_point_gets_the_whole_hierarchy_with_staff(demo_client, demo):
    lon, lat = demo_point(demo, GRID)
    doc = demo_client.get("/lookup", params={"lon": lon, "lat": lat}).json()
    assert doc["grid"]["code"] == GRID
    assert doc["community"]["code"] == GRID[:12] and doc["street"]["code"] == GRID[:9]
    assert doc["micro_grid"]["code"].startswith(GRID)
    assert (doc["status"], doc["distance_m"]) == ("inside", 0.0)
    staff = demo.staff[demo.staff["area_code"] == GRID]
    assert sorted(s["name"] for s in doc["grid"]["staff"]) == sorted(staff["name"])
    assert doc["grid"]["name"] == demo.grids.set_index("code").loc[GRID, "name"]
    assert doc["generation"]["label"] == "demo"


def test_gcj02_coordinates_of_a_demo_incident_give_the_grid_of_its_wgs84_ones(demo_client, demo):
    """Tried as a new user would: the Amap/WeChat coordinates of a real demo report."""
    reported = demo.incidents[demo.incidents["crs"] == "gcj02"].iloc[:25]
    for row in reported.itertuples():
        wgs_lon, wgs_lat = crs_mod.to_wgs84(row.lon, row.lat, "gcj02")
        by_gcj = demo_client.get(
            "/lookup", params={"lon": row.lon, "lat": row.lat, "crs": "gcj02"}
        ).json()
        by_wgs = demo_client.get(
            "/lookup", params={"lon": float(wgs_lon), "lat": float(wgs_lat)}
        ).json()
        assert by_gcj["grid"] == by_wgs["grid"] and by_gcj["grid"] is not None
        assert by_gcj["wgs84"]["lon"] == pytest.approx(float(wgs_lon), abs=1e-9)


@pytest.mark.parametrize("crs", ["cgcs2000", "bd09"])
def test_other_systems(demo_client, demo, crs):
    lon, lat = demo_point(demo, GRID)
    x, y = crs_mod.from_wgs84(lon, lat, crs)
    doc = demo_client.get("/lookup", params={"lon": float(x), "lat": float(y), "crs": crs}).json()
    assert doc["grid"]["code"] == GRID and doc["crs"] == crs


def test_outside_every_grid_and_snapping(demo_client, demo):
    minx, miny, maxx, maxy = demo.grids.total_bounds
    far = demo_client.get("/lookup", params={"lon": minx - 0.5, "lat": miny}).json()
    assert far["status"] == "outside" and far["grid"] is None and far["distance_m"] is None
    coords = np.asarray(demo.grids.geometry.union_all().exterior.coords)
    west = coords[coords[:, 0].argmin()]  # the westmost vertex of the district
    near = (west[0] - 0.0002, west[1])  # ~18 m further west: outside, near a grid
    plain = demo_client.get("/lookup", params={"lon": near[0], "lat": near[1]}).json()
    snapped = demo_client.get(
        "/lookup", params={"lon": near[0], "lat": near[1], "tolerance": 100}
    ).json()
    assert plain["status"] == "outside"
    assert snapped["status"] == "snapped" and 0 < snapped["distance_m"] <= 100
    assert snapped["grid"] is not None
    nothing_near = demo_client.get(
        "/lookup", params={"lon": minx - 0.5, "lat": miny, "tolerance": 100}
    ).json()
    assert nothing_near["status"] == "outside"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": 200, "lat": 34}, "lon"),
        ({"lon": 113, "lat": -91}, "lat"),
        ({"lon": 113, "lat": 34, "crs": "mars"}, "crs"),
        ({"lon": "x", "lat": 34}, "lon"),
        ({"lat": 34}, "lon"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(demo_client, params, field):
    response = demo_client.get("/lookup", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


def test_tolerance_is_bounded(demo_client):
    response = demo_client.get("/lookup", params={"lon": 113.8, "lat": 34.0, "tolerance": 1e6})
    assert response.status_code == 422 and "tolerance" in response.json()["detail"]


def test_generation_by_label_and_unknown(demo_client, demo):
    lon, lat = demo_point(demo, GRID)
    by_id = demo_client.get("/lookup", params={"lon": lon, "lat": lat, "generation": "1"})
    assert by_id.status_code == 200
    missing = demo_client.get("/lookup", params={"lon": lon, "lat": lat, "generation": "v9"})
    assert missing.status_code == 404


def test_batch_answers_like_single_lookups(demo_client, demo):
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = demo.grids.total_bounds
    lon = rng.uniform(minx - 0.01, maxx, 300).tolist()
    lat = rng.uniform(miny, maxy, 300).tolist()
    lon[0], lat[0] = None, None
    doc = demo_client.post("/lookup", json={"lon": lon, "lat": lat}).json()
    assert doc["count"] == 300 and doc["status"][0] == "outside"
    for i in (1, 50, 299):
        one = demo_client.get("/lookup", params={"lon": lon[i], "lat": lat[i]}).json()
        assert doc["grid_code"][i] == (one["grid"] or {}).get("code")
        assert doc["micro_grid_code"][i] == (one["micro_grid"] or {}).get("code")
        assert doc["status"][i] == one["status"]


def test_batch_in_gcj02_with_tolerance(demo_client, demo):
    reported = demo.incidents[demo.incidents["crs"] == "gcj02"].iloc[:100]
    doc = demo_client.post(
        "/lookup",
        json={
            "lon": reported["lon"].tolist(),
            "lat": reported["lat"].tolist(),
            "crs": "gcj02",
            "tolerance": 30,
        },
    ).json()
    assert sum(code is not None for code in doc["grid_code"]) >= 95


def test_batch_errors(demo_client, monkeypatch):
    uneven = demo_client.post("/lookup", json={"lon": [113.8, 113.9], "lat": [34.0]})
    assert uneven.status_code == 422 and "one of each" in uneven.json()["detail"]
    out = demo_client.post("/lookup", json={"lon": [113.8, 500], "lat": [34.0, 34.0]})
    assert out.status_code == 422 and "[1]" in out.json()["detail"]
    not_numbers = demo_client.post("/lookup", json={"lon": ["a"], "lat": [1]})
    assert not_numbers.status_code == 422
    assert demo_client.post("/lookup", content=b"{not json").status_code == 422
    monkeypatch.setattr(demo_client.app.state.gridmap.api, "max_lookup_points", 3)
    many = demo_client.post("/lookup", json={"lon": [113.8] * 4, "lat": [34.0] * 4})
    assert many.status_code == 413 and "at most 3" in many.json()["detail"]


def test_the_fast_path_matches_the_hierarchy_index(demo_client, demo):
    index = _index(demo_client)
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = demo.grids.total_bounds
    lon = rng.uniform(minx - 0.002, maxx + 0.002, 3000)
    lat = rng.uniform(miny - 0.002, maxy + 0.002, 3000)
    for tolerance in (0.0, 40.0):
        fast = assign_hierarchy(index, lon, lat, tolerance)
        reference = index.assign_xy(lon, lat, tolerance)
        for column in (
            "street_code",
            "community_code",
            "grid_code",
            "micro_grid_code",
            "assign_status",
        ):
            expected = [None if v is None or v != v else v for v in reference[column]]
            assert list(fast[column]) == expected, column
        np.testing.assert_allclose(fast["distance_m"], reference["distance_m"].to_numpy())


def test_the_single_point_path_matches_the_hierarchy_index(demo_client, demo):
    index = _index(demo_client)
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = demo.grids.total_bounds
    lon = rng.uniform(minx - 0.002, maxx + 0.002, 3000)
    lat = rng.uniform(miny - 0.002, maxy + 0.002, 3000)
    # Vertices and edge midpoints of grids: the hard cases.
    first = demo.grids.geometry.iloc[0]
    ring = np.asarray(getattr(first, "geoms", [first])[0].exterior.coords)
    lon = np.concatenate([lon, ring[:, 0], (ring[:-1, 0] + ring[1:, 0]) / 2])
    lat = np.concatenate([lat, ring[:, 1], (ring[:-1, 1] + ring[1:, 1]) / 2])
    reference = index.assign_xy(lon, lat)
    columns = ("street_code", "community_code", "grid_code", "micro_grid_code", "assign_status")
    for i in range(len(lon)):
        one = assign_point(index, float(lon[i]), float(lat[i]))
        expected = [None if (v := reference[c].iat[i]) is None or v != v else v for c in columns]
        assert [one[c] for c in columns] == expected, (lon[i], lat[i])
