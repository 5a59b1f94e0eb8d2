"""Thematic layers in PostGIS: all-or-nothing imports, and the Chicago police districts
as a theme over the 277 beats loaded as grids, checked against ``geopandas.overlay``.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from app.errors import NotFoundError
from app.services.area_import import import_area_file, import_areas
from app.services.layers import (
    crosswalk_of,
    delete_layer,
    export_layer,
    grid_theme_units,
    import_layer,
    import_layer_file,
    list_layers,
    suggestion_of,
    theme_units_at,
    write_crosswalk,
)
from gis.crs import metric_crs
from gis.tables import read_table
from tests import browser as browser_support

# The browser test's fixtures: `gridmap serve` over the demo database, and Chromium.

BEATS = "chicago_police_beats_277.geojson"
DISTRICTS = "chicago_police_districts.geojson"


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def _two_grids(engine) -> None:
    """Grids 411002001001001 (west) and …002 (east), each 0.01° square, and …003 north of
    both, which no theme of these tests touches (a map needs three grids for Gi*).
    """
    grids = gpd.GeoDataFrame(
        {"code": [f"41100200100100{i}" for i in (1, 2, 3)], "households": [40, 60, 10]},
        geometry=[
            shapely.box(113.80, 34.0, 113.81, 34.01),
            shapely.box(113.81, 34.0, 113.82, 34.01),
            shapely.box(113.80, 34.01, 113.82, 34.02),
        ],
        crs=4326,
    )
    report = import_areas(
        engine, grids, "grid", source="test", code_field="code", parent_code="411002001001"
    )
    assert report.loaded, report.problems


def test_a_refused_theme_stores_nothing_and_keeps_every_problem(clean_db):
    _two_grids(clean_db)
    layer = gpd.GeoDataFrame(
        {"pcs": ["A", "A", None]},
        geometry=[shapely.box(113.80, 34.0, 113.815, 34.01)] * 2 + [shapely.Polygon()],
        crs=4326,
    )
    report = import_layer(clean_db, layer, "police", source="t", code_field="pcs")
    assert not report.loaded
    reasons = " | ".join(p["reason"] for p in report.problems)
    assert "duplicate pcs 'A'" in reasons and "empty geometry" in reasons
    assert "missing code" in reasons
    assert _count(clean_db, "SELECT count(*) FROM thematic_layer") == 0
    assert _count(clean_db, "SELECT count(*) FROM thematic_unit") == 0
    assert (
        _count(
            clean_db,
            "SELECT count(*) FROM import_batch WHERE kind = 'layers' AND status = 'rejected'",
        )
        == 1
    )
    assert _count(clean_db, "SELECT count(*) FROM rejected_row") == len(report.problems)


def test_a_theme_is_stored_looked_up_listed_exported_and_deleted(clean_db, tmp_path):
    _two_grids(clean_db)
    layer = gpd.GeoDataFrame(
        {"pcs": ["W", "E"], "label": ["西片 west", "东片 east"]},
        geometry=[
            shapely.box(113.80, 34.0, 113.815, 34.01),
            shapely.box(113.815, 34.0, 113.82, 34.01),
        ],
        crs=4326,
    )
    report = import_layer(
        clean_db, layer, "market", source="t", code_field="pcs", name_field="label"
    )
    assert report.loaded and report.stored == 2
    assert [x.theme for x in list_layers(clean_db)] == ["market"]
    with clean_db.connect() as conn:
        gen_id = conn.execute(text("SELECT id FROM generation WHERE is_active")).scalar_one()
    assert theme_units_at(clean_db, gen_id, 113.805, 34.005) == {
        "market": {"code": "W", "name": "西片 west"}
    }
    assert theme_units_at(clean_db, gen_id, 114.5, 34.005) == {"market": None}
    result = crosswalk_of(clean_db, "market")
    assert result.summary()["aligned"] == 1 and result.summary()["split"] == 1
    east = result.crosswalk.units_of_grid("411002001001002").set_index("unit_code")
    assert east.loc["W", "share_of_grid"] == pytest.approx(0.5, abs=1e-3)
    assert east.loc["W", "households"] == pytest.approx(30, abs=0.1)  # 60 split by area
    grid = result.grids[result.grids["code"] == "411002001001002"]
    shares = {u["code"]: u["share_of_grid"] for u in grid_theme_units(clean_db, gen_id, grid)}
    assert shares == pytest.approx({"W": 0.5, "E": 0.5}, abs=1e-3)
    path = write_crosswalk(result, tmp_path / "cw.xlsx")
    table, _ = read_table(path)
    assert len(table) == 3 and "网格编码 grid_code" in table.columns
    rows, _ = read_table(write_crosswalk(result, tmp_path / "cw.csv"))
    assert rows["专题单元编码 unit_code"].tolist() == table["专题单元编码 unit_code"].tolist()
    _, count = export_layer(clean_db, "market", tmp_path / "market.geojson")
    assert count == 2 and len(gpd.read_file(tmp_path / "market.geojson")) == 2
    assert delete_layer(clean_db, "market") == 2
    assert _count(clean_db, "SELECT count(*) FROM thematic_unit") == 0
    with pytest.raises(NotFoundError, match="no theme 'market'"):
        crosswalk_of(clean_db, "market")


def test_reimporting_a_theme_refuses_its_codes_unless_replaced(clean_db):
    _two_grids(clean_db)
    layer = gpd.GeoDataFrame(
        {"pcs": ["W"]}, geometry=[shapely.box(113.80, 34.0, 113.81, 34.01)], crs=4326
    )
    assert import_layer(clean_db, layer, "party", source="t", code_field="pcs").loaded
    again = import_layer(clean_db, layer, "party", source="t", code_field="pcs")
    assert "already exists" in again.problems[0]["reason"]
    replaced = import_layer(clean_db, layer, "party", source="t", code_field="pcs", replace=True)
    assert replaced.loaded and replaced.replaced == 1
    assert _count(clean_db, "SELECT count(*) FROM thematic_unit") == 1


def _overlay_counts(beats: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, threshold: float):
    """Aligned beats and the split ones with their areas, by geopandas.overlay."""
    metric = metric_crs(beats)
    b = beats[["beat_num", "geometry"]].reset_index().to_crs(metric)
    b["beat_m2"] = b.area
    d = districts.dissolve("dist_num").reset_index()[["dist_num", "geometry"]].to_crs(metric)
    pieces = gpd.overlay(b, d, how="intersection", keep_geom_type=True)
    pieces["m2"] = pieces.area
    per_pair = pieces.groupby(["index", "dist_num"]).agg(
        m2=("m2", "sum"), beat=("beat_m2", "first")
    )
    largest = (per_pair["m2"] / per_pair["beat"]).groupby("index").max()
    split = largest[largest < threshold].index
    return int((largest >= threshold).sum()), b.loc[split, "beat_m2"].sort_values()


def test_chicago_police_districts_over_the_277_beats(clean_db, chicago_dir, tmp_path):
    loaded = import_area_file(
        clean_db, chicago_dir / BEATS, "grid", generation="chicago", parent_code="999999001001"
    )
    assert loaded.loaded and loaded.stored == 277
    report = import_layer_file(
        clean_db,
        chicago_dir / DISTRICTS,
        "police",
        generation="chicago",
        code_field="dist_num",
        name_field="dist_label",
        merge_parts=True,
    )
    assert report.loaded, report.problems[:3]
    # 27 features: districts 16 (two pieces) and 31 (three) are merged into one unit each.
    assert report.rows_in == 27 and report.stored == 24
    result = crosswalk_of(clean_db, "police", "chicago")
    beats = gpd.read_file(chicago_dir / BEATS)
    districts = gpd.read_file(chicago_dir / DISTRICTS)
    aligned, split_areas = _overlay_counts(beats, districts, 0.99)
    summary = result.summary()
    assert summary["grids"] == 277 and summary["uncovered"] == 0
    assert summary["aligned"] == aligned == 273
    assert summary["split"] == len(split_areas) == 4
    ours = result.crosswalk.split["area_m2"].sort_values().to_numpy()
    assert ours == pytest.approx(split_areas.to_numpy(), rel=1e-9)
    # The boundary score against a direct computation: the districts' boundary inside the
    # 10 m band around the united beat boundaries.
    metric = metric_crs(beats)
    theme_lines = shapely.union_all(shapely.boundary(districts.to_crs(metric).geometry.values))
    beat_lines = shapely.line_merge(
        shapely.union_all(shapely.boundary(beats.to_crs(metric).geometry.values))
    )
    band = shapely.union_all(shapely.buffer(shapely.get_parts(beat_lines), 10, quad_segs=4))
    direct = shapely.length(shapely.intersection(theme_lines, band)) / shapely.length(theme_lines)
    assert summary["share_boundary_within"] == pytest.approx(direct, rel=1e-6)
    assert 0.95 < summary["share_boundary_within"] <= 1.0  # beats nest in districts, mostly
    # Every beat lies within the districts: its shares add up to 1 but for slivers of the
    # real files (at most 0.01 % of a beat).
    total = result.crosswalk.pairs.groupby("grid_code")["share_of_grid"].sum()
    assert total.to_numpy() == pytest.approx(1.0, abs=1e-4)
    suggestion = suggestion_of(result)
    assert len(suggestion) == 24 and suggestion["grids"].sum() == 277
    # What units gain is what others lose plus the bits of beats outside every district.
    outside = result.crosswalk.grids["outside_m2"].sum()
    gained, lost = suggestion["area_gained_m2"].sum(), suggestion["area_lost_m2"].sum()
    assert gained == pytest.approx(lost + outside, rel=1e-9)
    write_crosswalk(result, tmp_path / "police.geojson")
    classed = gpd.read_file(tmp_path / "police.geojson")
    assert (classed["status"] == "split").sum() == 4


def test_the_api_serves_themes_in_lookup_ogc_and_the_crosswalk(clean_db):
    from tests.helpers import make_client

    _two_grids(clean_db)
    layer = gpd.GeoDataFrame(
        {"pcs": ["W", "E"], "label": ["西片", "东片"]},
        geometry=[
            shapely.box(113.80, 34.0, 113.816, 34.01),  # 60 % of the east grid
            shapely.box(113.816, 34.0, 113.82, 34.01),
        ],
        crs=4326,
    )
    assert import_layer(
        clean_db, layer, "police", source="t", code_field="pcs", name_field="label"
    ).loaded
    with make_client(clean_db) as client:
        found = client.get("/lookup", params={"lon": 113.817, "lat": 34.005}).json()
        assert found["grid"]["code"] == "411002001001002"
        assert found["themes"] == {"police": {"code": "E", "name": "东片"}}
        batch = client.post(
            "/lookup", json={"lon": [113.805, 113.817, 114.5, None], "lat": [34.005] * 3 + [None]}
        ).json()
        assert batch["themes"] == {"police": ["W", "E", None, None]}
        assert batch["grid_code"][:2] == ["411002001001001", "411002001001002"]
        # A theme imported while the app runs (the CLI, another process) reaches the lookup
        # index with the next data version, like areas do.
        market = layer.assign(pcs=["M1", "M2"])[["pcs", "geometry"]]
        assert import_layer(clean_db, market, "market", source="t", code_field="pcs").loaded
        assert client.app.state.gridmap.registry.refresh() is True
        found = client.get("/lookup", params={"lon": 113.805, "lat": 34.005}).json()
        assert found["themes"] == {
            "market": {"code": "M1", "name": None},
            "police": {"code": "W", "name": "西片"},
        }
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert "themes" in schema["LookupResult"]["properties"]
        assert "themes" in schema["LookupBatchResult"]["properties"]
        assert delete_layer(clean_db, "market") == 2
        assert client.app.state.gridmap.registry.refresh() is True
        collections = client.get("/collections").json()["collections"]
        police = next(c for c in collections if c["id"] == "layer_police")
        assert police["extent"]["spatial"]["bbox"][0] == pytest.approx(
            [113.80, 34.0, 113.82, 34.01]
        )
        items = client.get("/collections/layer_police/items").json()
        assert items["numberMatched"] == 2
        assert sorted(f["id"] for f in items["features"]) == ["E", "W"]
        assert items["features"][0]["properties"]["name"] in ("西片", "东片")
        one = client.get("/collections/layer_police/items/W").json()
        assert one["properties"]["code"] == "W"
        boxed = client.get(
            "/collections/layer_police/items", params={"bbox": "113.801,34.001,113.805,34.005"}
        )
        assert [f["id"] for f in boxed.json()["features"]] == ["W"]
        assert (
            client.get("/collections/layer_police/items", params={"kind": "micro"}).status_code
            == 422
        )
        assert client.get("/collections/layer_market/items").status_code == 404
        assert client.get("/collections/layer_Bad/items").status_code == 404
        assert client.get("/layers").json()[0]["collection"] == "layer_police"
        crosswalk = client.get("/layers/police/crosswalk").json()
        assert crosswalk["summary"]["aligned"] == 1 and crosswalk["summary"]["split"] == 1
        assert crosswalk["split"][0]["grid_code"] == "411002001001002"
        assert {p["unit_code"] for p in crosswalk["pairs"]} == {"W", "E"}
        assert client.get("/layers/police/crosswalk", params={"threshold": 2}).status_code == 422
        assert client.get("/layers/market/crosswalk").status_code == 404
        suggestion = client.get("/layers/police/suggestion").json()
        by_code = {f["properties"]["code"]: f["properties"] for f in suggestion["features"]}
        assert by_code["W"]["grids"] == 2 and by_code["E"]["grids"] == 0
        page = client.get("/map")
        assert page.status_code == 200, page.text
        assert "警务网格 police (2)" in page.text
        assert "警务网格 police: 分割网格 split grids (1)" in page.text
        grid_page = client.get("/map/grids/411002001001002").text
        assert "W 西片 (60%)" in grid_page and "E 东片 (40%)" in grid_page


def _halves(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Two units, west and east, cutting the district in half (and many grids with it)."""
    west, south, east, north = grids.total_bounds
    middle = (west + east) / 2
    return gpd.GeoDataFrame(
        {"code": ["W", "E"], "name": ["西所 west", "东所 east"]},
        geometry=[
            shapely.box(west - 0.01, south - 0.01, middle, north + 0.01),
            shapely.box(middle, south - 0.01, east + 0.01, north + 0.01),
        ],
        crs=4326,
    )


def test_the_map_draws_each_theme_and_the_grid_page_lists_its_units(demo):
    from app.maps.assets import AssetStore
    from app.maps.grid_page import build_grid_page
    from app.maps.page import PageOptions, build_map_page
    from app.services.analysis import Selection
    from app.services.layers import ThemeCrosswalk
    from app.services.map_data import MapData
    from gis.layers import build_crosswalk

    data = MapData.from_demo(demo)
    grids = data.level("grid")
    units = _halves(grids)
    crosswalk = build_crosswalk(units, grids, data.level("micro_grid"))
    data.themes = {"police": ThemeCrosswalk("police", "demo", units, grids, crosswalk)}
    split = crosswalk.split
    assert len(split) > 0
    options = PageOptions(permutations=9)
    store = AssetStore.configured()
    page = build_map_page(data, Selection(), "count", options, store)
    assert "警务网格 police (2)" in page
    assert f"警务网格 police: 分割网格 split grids ({len(split)})" in page
    assert "分割为 split into" in page and "西所 west" in page
    one = split["grid_code"].iloc[0]
    grid_page = build_grid_page(data, one, Selection(), options, store)
    assert "split 分割" in grid_page and "W 西所 west" in grid_page and "E 东所 east" in grid_page


def test_migration_0007_downgrades_and_upgrades_with_themes_stored(clean_db):
    from alembic import command
    from sqlalchemy import inspect

    from app.db.session import alembic_config, upgrade
    from tests.helpers import engine_url

    _two_grids(clean_db)
    layer = gpd.GeoDataFrame(
        {"pcs": ["W"]}, geometry=[shapely.box(113.80, 34.0, 113.81, 34.01)], crs=4326
    )
    assert import_layer(clean_db, layer, "mediation", source="t", code_field="pcs").loaded
    url = engine_url(clean_db)
    command.downgrade(alembic_config(url), "0006")
    try:
        with clean_db.connect() as conn:
            assert not inspect(conn).has_table("thematic_unit")
            assert not inspect(conn).has_table("thematic_layer")
            # The theme's import batch went with it; the area import's stayed.
            kinds = set(conn.execute(text("SELECT kind FROM import_batch")).scalars())
            assert kinds == {"areas"}
    finally:
        upgrade(url)
    with clean_db.connect() as conn:
        assert inspect(conn).has_table("thematic_unit")
    assert import_layer(clean_db, layer, "mediation", source="t", code_field="pcs").loaded


# -- the map in a real browser (Debian's Chromium; see tests/test_browser.py) --------------
@pytest.fixture(scope="module")
def police_on_demo(demo_engine, demo):
    """A police theme of two units cutting the demo district in half, removed afterwards."""
    units = _halves(demo.grids)
    report = import_layer(
        demo_engine, units, "police", source="browser", code_field="code", name_field="name"
    )
    assert report.loaded, report.problems
    try:
        yield crosswalk_of(demo_engine, "police")
    finally:
        delete_layer(demo_engine, "police")
        with demo_engine.begin() as conn:
            conn.execute(text("DELETE FROM import_batch WHERE id = :b"), {"b": report.batch_id})


@pytest.mark.db
@pytest.mark.slow
def test_the_browser_draws_the_theme_and_its_split_grids(police_on_demo, server, browser):
    split = police_on_demo.crosswalk.split
    v = browser_support.Visit(browser, server + "/map")
    try:
        assert v.count("themes") == 0 and v.count("theme_split") == 0  # off by default
        v.toggle("警务网格 police (2)")
        assert v.count("themes") == 2
        v.toggle("分割网格 split grids")
        assert v.count("theme_split") == len(split)
        browser_support.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        v.page.screenshot(path=str(browser_support.SCREENSHOTS / "map_thematic_layer.png"))
        # Hovering a split grid names the grid and both units.
        code = split["grid_code"].iloc[0]
        inside = police_on_demo.grids.set_index("code").geometry[code].representative_point()
        box = v.page.locator(".folium-map").bounding_box()
        v.page.evaluate("([lat, lon]) => gridmap.map.setView([lat, lon], 17)", [inside.y, inside.x])
        v.page.wait_for_timeout(500)
        x, y = v.page.evaluate(
            "([lat, lon]) => { const p = gridmap.map.latLngToContainerPoint("
            "[lat, lon]); return [p.x, p.y]; }",
            [inside.y, inside.x],
        )
        v.page.mouse.move(box["x"] + x, box["y"] + y)
        tooltip = v.page.locator(".leaflet-tooltip", has_text="分割为")
        tooltip.wait_for(timeout=5000)
        text_shown = tooltip.inner_text()
        assert code in text_shown and "W: " in text_shown and "E: " in text_shown
    finally:
        v.close()
    # The grid's page lists the units of every theme it lies in.
    page = browser_support.Visit(browser, server + f"/map/grids/{split['grid_code'].iloc[0]}")
    try:
        shown = page.page.locator("body").inner_text()
        assert "W 西所 west" in shown and "E 东所 east" in shown
    finally:
        page.close()
