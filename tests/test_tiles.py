"""Vector tiles (/tiles/{layer}/{z}/{x}/{y}.mvt) on the demo database, decoded with
mapbox-vector-tile: content, emptiness, validators, scope of the incident numbers."""

from __future__ import annotations

import json
import math
import re
import time
from contextlib import contextmanager

import mapbox_vector_tile
import pytest
from shapely.geometry import Point, shape
from sqlalchemy import event, text

from app.api.deps import get_principal
from app.services.security import Principal
from tests.helpers import demo_point

MVT = "application/vnd.mapbox-vector-tile"
GRID = "411002001001001"  # a demo grid; its community is its first 12 digits


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """XYZ column and row of the tile holding a WGS84 point."""
    side = 2**z
    x = int((lon + 180) / 360 * side)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * side)
    return x, y


def tile_xy(lon: float, lat: float, z: int, x: int, y: int, extent: int = 4096):
    """The point in tile coordinates (y down, as decoded with ``y_coord_down``)."""
    side = 2**z
    fx = (lon + 180) / 360 * side
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * side
    return (fx - x) * extent, (fy - y) * extent


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def features(client, layer: str, z: int, x: int, y: int, **kwargs) -> dict[str, dict]:
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    found = decode(response.content).get(layer, {"features": []})
    return {f["properties"]["code"]: f for f in found["features"]}


@pytest.fixture
def as_principal(demo_client):
    """Make every request of the demo app come from a given principal (removed after)."""

    def use(principal: Principal) -> None:
        demo_client.app.dependency_overrides[get_principal] = lambda: principal

    yield use
    demo_client.app.dependency_overrides.pop(get_principal, None)


def test_a_known_grid_is_in_its_tile_with_its_properties(demo_client, demo):
    lon, lat = demo_point(demo, GRID)
    z = 15
    x, y = tile_of(lon, lat, z)
    found = features(demo_client, "grids", z, x, y)
    assert GRID in found
    grid = found[GRID]
    row = demo.grids.set_index("code").loc[GRID]
    assert grid["properties"]["name"] == row["name"]
    assert grid["properties"]["level"] == "grid"
    assert grid["properties"]["kind"] == row["kind"]
    # the point inside the grid lies inside its decoded polygon, in tile coordinates
    assert shape(grid["geometry"]).buffer(2).contains(Point(tile_xy(lon, lat, z, x, y)))
    # other grids of the tile do not contain it (the tile is not one big blob)
    others = [c for c, f in found.items() if c != GRID and shape(f["geometry"]).area > 0]
    assert all(
        not shape(found[c]["geometry"]).buffer(-2).contains(Point(tile_xy(lon, lat, z, x, y)))
        for c in others
    )


@pytest.mark.parametrize(
    ("layer", "level"),
    [("streets", "street"), ("communities", "community"), ("micro_grids", "micro_grid")],
)
def test_every_level_has_its_layer(demo_client, demo, layer, level):
    lon, lat = demo_point(demo, GRID)
    x, y = tile_of(lon, lat, 16)
    found = features(demo_client, layer, 16, x, y)
    assert found, f"no {layer} at the demo grid"
    assert {f["properties"]["level"] for f in found.values()} == {level}
    expected = {"street": GRID[:9], "community": GRID[:12]}.get(level)
    if expected:
        assert expected in found


def test_micro_grid_codes_at_zoom_16(demo_client, demo):
    micro = demo.micro_grids.iloc[0]
    point = micro.geometry.representative_point()
    x, y = tile_of(point.x, point.y, 16)
    found = features(demo_client, "micro_grids", 16, x, y)
    assert micro["code"] in found


def test_an_empty_tile_has_no_body(demo_client):
    # the Atlantic, far from the demo district (Henan)
    response = demo_client.get("/tiles/grids/10/400/400.mvt")
    assert response.status_code == 200
    assert response.content == b""
    assert decode(response.content) == {}


def test_anonymous_tiles_carry_no_incident_numbers(demo_client, demo):
    lon, lat = demo_point(demo, GRID)
    x, y = tile_of(lon, lat, 14)
    response = demo_client.get(f"/tiles/grids/14/{x}/{y}.mvt")
    found = features(demo_client, "grids", 14, x, y)
    assert found
    for feature in found.values():
        assert set(feature["properties"]) <= {"code", "name", "level", "kind"}
    assert response.headers["cache-control"].startswith("public")


def test_keyed_callers_get_counts_and_hot_spot_classes(demo_client, demo_keys, demo, demo_engine):
    lon, lat = demo_point(demo, GRID)
    x, y = tile_of(lon, lat, 14)
    response = demo_client.get(f"/tiles/grids/14/{x}/{y}.mvt", headers=demo_keys["viewer"])
    assert response.headers["cache-control"].startswith("private")
    grid = {f["properties"]["code"]: f for f in decode(response.content)["grids"]["features"]}
    props = grid[GRID]["properties"]
    with demo_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM incident_current WHERE grid_code = :c"), {"c": GRID}
        ).scalar_one()
    assert count > 0
    assert props["incidents"] == count
    assert props["hot"] in range(-3, 4)
    # a window counts fewer
    windowed = features(
        demo_client,
        "grids",
        14,
        x,
        y,
        params={"start": "2099-01-01"},
        headers=demo_keys["viewer"],
    )
    assert windowed[GRID]["properties"]["incidents"] == 0


def test_a_scoped_caller_gets_numbers_only_inside_its_area(demo_client, demo, as_principal):
    community = GRID[:12]
    lon, lat = demo_point(demo, GRID)
    x, y = tile_of(lon, lat, 13)
    as_principal(Principal(None, "gm_test", "viewer", area=community))
    found = features(demo_client, "grids", 13, x, y)
    inside = {c for c in found if c.startswith(community)}
    outside = set(found) - inside
    assert inside and outside, "the tile should hold grids of several communities"
    assert all("incidents" in found[c]["properties"] for c in inside)
    assert all("incidents" not in found[c]["properties"] for c in outside)
    assert all("hot" not in found[c]["properties"] for c in outside)
    # Gi* weighs the neighbours outside the scope too: no class for a scoped caller
    assert all("hot" not in found[c]["properties"] for c in inside)


def test_etag_304_and_a_new_incident_changes_the_count_tile(
    demo_client, demo_keys, demo, incident_source
):
    lon, lat = demo_point(demo, GRID)
    x, y = tile_of(lon, lat, 15)
    url = f"/tiles/grids/15/{x}/{y}.mvt"
    viewer = demo_keys["viewer"]
    first = demo_client.get(url, headers=viewer)
    etag = first.headers["etag"]
    again = demo_client.get(url, headers={**viewer, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    public = demo_client.get(url)
    assert public.headers["etag"] != etag  # numbers or not: different tiles
    before = {f["properties"]["code"]: f for f in decode(first.content)["grids"]["features"]}

    body = {"source": incident_source, "external_id": "tile-1", "category": "0401"}
    created = demo_client.post(
        "/incidents", json={**body, "lon": lon, "lat": lat}, headers=demo_keys["operator"]
    )
    assert created.status_code == 201, created.text
    demo_client.app.state.gridmap.version.check()  # as the watcher's next tick would

    after = demo_client.get(url, headers={**viewer, "If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    grids = {f["properties"]["code"]: f for f in decode(after.content)["grids"]["features"]}
    assert grids[GRID]["properties"]["incidents"] == before[GRID]["properties"]["incidents"] + 1


@contextmanager
def database_use(engine):
    """Counts of pool checkouts and statements on ``engine`` while the block runs."""
    seen = {"checkouts": 0, "statements": 0}

    def checkout(*_):
        seen["checkouts"] += 1

    def statement(*_):
        seen["statements"] += 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "before_cursor_execute", statement)


def test_a_tile_is_one_statement_and_a_304_none(demo_client, demo):
    state = demo_client.app.state.gridmap
    state.version.check()  # fresh: no question of the data version is due
    lon, lat = demo_point(demo, GRID)
    x, y = tile_of(lon, lat, 15)
    url = f"/tiles/grids/15/{x}/{y}.mvt"
    with database_use(state.engine) as tile_use:
        first = demo_client.get(url)
    assert first.status_code == 200
    assert GRID in {f["properties"]["code"] for f in decode(first.content)["grids"]["features"]}
    assert tile_use == {"checkouts": 1, "statements": 1}
    with database_use(state.engine) as revalidation:
        again = demo_client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert revalidation == {"checkouts": 0, "statements": 0}


def test_a_new_incident_leaves_boundary_validators_alone(
    demo_client, demo_keys, demo, incident_source
):
    state = demo_client.app.state.gridmap
    lon, lat = demo_point(demo, GRID)
    x, y = tile_of(lon, lat, 15)
    url = f"/tiles/grids/15/{x}/{y}.mvt"
    state.version.check()
    public, keyed = demo_client.get(url), demo_client.get(url, headers=demo_keys["viewer"])
    body = {"source": incident_source, "external_id": "tile-2", "category": "0401"}
    created = demo_client.post(
        "/incidents", json={**body, "lon": lon, "lat": lat}, headers=demo_keys["operator"]
    )
    assert created.status_code == 201, created.text
    state.version.check()
    # the boundaries did not change: browsers keep their tiles; the counts did
    again = demo_client.get(url, headers={"If-None-Match": public.headers["etag"]})
    assert again.status_code == 304
    keyed_again = demo_client.get(
        url, headers={**demo_keys["viewer"], "If-None-Match": keyed.headers["etag"]}
    )
    assert keyed_again.status_code == 200


def test_the_data_version_answers_at_once_and_catches_up_in_the_background(
    demo_engine, demo_client, demo_keys, demo, incident_source
):
    from app.services.data_version import DataVersion

    version = DataVersion(demo_engine, max_age=0)  # every answer is old at once
    before = version.latest()  # the first answer is asked for
    lon, lat = demo_point(demo, GRID)
    body = {"source": incident_source, "external_id": "tile-3", "category": "0401"}
    created = demo_client.post(
        "/incidents", json={**body, "lon": lon, "lat": lat}, headers=demo_keys["operator"]
    )
    assert created.status_code == 201, created.text
    # old, so a question goes out in the background; this call does not wait for it
    assert version.latest() == before
    deadline = time.monotonic() + 30
    while version.latest() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    caught_up = version.latest()
    assert caught_up != before
    assert caught_up.areas == before.areas  # only the incidents changed
    assert caught_up == version.check()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tiles/grids/3/8/0.mvt", 422),  # x beyond 2^z - 1
        ("/tiles/grids/3/0/8.mvt", 422),
        ("/tiles/grids/-1/0/0.mvt", 422),
        ("/tiles/grids/40/0/0.mvt", 422),
        ("/tiles/grids/a/0/0.mvt", 422),
        ("/tiles/grids/1/0/x.mvt", 422),
        ("/tiles/nothing/1/0/0.mvt", 404),
        ("/tiles/layer_nothing/1/0/0.mvt", 404),
        ("/tiles/Grids/1/0/0.mvt", 422),
        ("/tiles/grids/1/0/0.mvt?generation=nope", 404),
        ("/tiles/grids/1/0/0.mvt?start=2024-13-01", 422),
    ],
)
def test_bad_tiles_are_client_errors(demo_client, path, status):
    response = demo_client.get(path)
    assert response.status_code == status, response.text
    assert "detail" in response.json()


# -- pages drawn from tiles ------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_data(demo):
    from app.services.map_data import MapData

    return MapData.from_demo(demo)


def _page(data, tiles=None) -> str:
    from app.maps.page import PageOptions, build_map_page

    return build_map_page(
        data, options=PageOptions(asset_prefix="/static/vendor/", tiles=tiles, permutations=0)
    )


def test_a_served_page_draws_micro_grids_from_tiles(demo_client, demo_keys):
    page = demo_client.get("/map", headers=demo_keys["viewer"]).text
    assert 'gridmapVectorTiles("/tiles/micro_grids/{z}/{x}/{y}.mvt?v=' in page
    assert "leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.min.js" in page
    assert "gridmap-geom-micro_grid" not in page  # not embedded
    assert "gridmap-geom-grid" in page  # 620 grids: below the threshold, embedded
    assert "/tiles/grids/" not in page


def test_above_the_threshold_grids_and_outlines_come_from_tiles(demo_data, demo):
    from app.maps.tiles import TileOptions

    page = _page(demo_data, TileOptions("/tiles/{layer}/{z}/{x}/{y}.mvt?v=x", threshold=100))
    for layer in ("grids", "micro_grids", "communities", "streets"):
        assert f'gridmapVectorTiles("/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt?v=x"' in page, layer
    for block in ("grid", "micro_grid", "community", "street"):
        assert f'id="gridmap-geom-{block}"' not in page, block
    # what the tiles do not carry stays in the page, per grid code
    table = next(
        json.loads(m.group(1))
        for m in re.finditer(r'id="gridmap-tiles-[^"]+">(.*?)</script>', page, re.S)
    )
    assert set(table["rows"]) == set(demo.grids["code"])
    assert "count" in table["columns"] and "staff" not in table["columns"]
    assert len(page.encode()) < len(_page(demo_data).encode()) / 2


def test_a_gcj02_basemap_keeps_embedding(demo_data):
    from app.maps.basemap import PRESETS
    from app.maps.page import PageOptions, build_map_page
    from app.maps.tiles import TileOptions

    options = PageOptions(
        basemap=PRESETS["amap"],
        asset_prefix="/static/vendor/",
        tiles=TileOptions("/tiles/{layer}/{z}/{x}/{y}.mvt", threshold=0),
        permutations=0,
    )
    page = build_map_page(demo_data, options=options)
    assert "gridmapVectorTiles(" not in page  # tiles are WGS84; the page shifts to GCJ-02


def test_heat_cells_grow_with_the_extent(demo_data):
    from app.maps.tiles import heat_cell_m

    assert heat_cell_m(demo_data) == 100.0
    assert heat_cell_m(demo_data, most_cells=1000) > 100.0


def test_a_standalone_page_refuses_more_areas_than_it_can_hold(demo_data):
    from app.cli.maps import _check_embeddable
    from gis.errors import GridmapError

    _check_embeddable(demo_data, 10_000)  # 6,208 areas: fine
    with pytest.raises(GridmapError, match="gridmap serve"):
        _check_embeddable(demo_data, 1_000)


def test_pages_are_kept_on_disk_per_data_version(demo_engine, tmp_path):
    from app.config import MapSettings
    from app.maps.page_cache import PageCache
    from app.services.data_version import DataVersion
    from app.services.map_data import MapDataCache

    def cache() -> PageCache:
        data = MapDataCache(demo_engine, DataVersion(demo_engine, 60))
        return PageCache(data, MapSettings(page_store=True, page_dir=tmp_path))

    built = []
    first = cache().page(("k",), lambda data: built.append(1) or f"page of {data.generation['id']}")
    assert built == [1] and len(list(tmp_path.glob("*.html"))) == 1

    def refuse(data):
        raise AssertionError("a page on disk for this data version must not be rebuilt")

    assert cache().page(("k",), refuse) == first  # a new process: read, not rebuilt
    assert cache().page(("other",), lambda data: "other") == "other"
    assert len(list(tmp_path.glob("*.html"))) == 2


def test_a_thematic_layer_has_its_tiles(loaded, small_demo):
    import geopandas as gpd

    from app.services.layers import import_layer
    from tests.helpers import make_client

    grids = small_demo.grids.iloc[:2]
    units = gpd.GeoDataFrame(
        {"code": ["P01", "P02"], "name": ["城关派出所", "东区派出所"]},
        geometry=grids.geometry.to_numpy(),
        crs=4326,
    )
    report = import_layer(loaded, units, "police", source="test")
    assert not report.problems, report.problems
    point = grids.geometry.iloc[0].representative_point()
    x, y = tile_of(point.x, point.y, 15)
    with loaded.connect() as conn:
        stored = dict(conn.execute(text("SELECT code, name FROM thematic_unit")).all())
    assert len(stored) == 2
    with make_client(loaded) as client:
        found = features(client, "layer_police", 15, x, y)
        assert set(found) <= set(stored) and found, (found.keys(), report)
        for code, feature in found.items():
            expected = {"code": code, "theme": "police", "name": stored[code]}
            assert feature["properties"] == {k: v for k, v in expected.items() if v is not None}
        missing = client.get(f"/tiles/layer_market/15/{x}/{y}.mvt")
        assert missing.status_code == 404 and "layer_police" in missing.json()["detail"]
