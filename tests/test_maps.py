"""Map pages, their offline assets, the analysis endpoints and the map CLI.

Page builders are tested on the demo district in memory (MapData.from_demo);
the endpoints and the CLI on the demo database.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import folium
import numpy as np
import pandas as pd
import pytest
from folium.plugins import HeatMap, MarkerCluster, Search
from sqlalchemy import text

from app.config import ApiSettings, MapSettings, Settings
from app.maps.assets import ASSETS, DROPPED, AssetError, AssetStore, localize
from app.maps.basemap import PRESETS, resolve_basemap
from app.maps.grid_page import build_grid_page
from app.maps.page import PageOptions, _compact_unicode, build_map_page
from app.services import analysis
from app.services.analysis import Selection
from app.services.map_data import MapData
from gis import crs as crs_mod
from gis.errors import ValidationError

SERVED = PageOptions(
    asset_prefix="/static/vendor/", grid_url="/map/grids/{code}", map_url="/map", permutations=99
)
URL = re.compile(r"https?://[^\s\"'<>)]+")


# -- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(demo) -> MapData:
    return MapData.from_demo(demo)


@pytest.fixture(scope="module")
def store() -> AssetStore:
    return AssetStore.configured()


@pytest.fixture(scope="module")
def page(data, store) -> str:
    return build_map_page(data, Selection(), "count", SERVED, store)


class _Blocks(HTMLParser):
    """The page's JSON data blocks and the URLs it loads."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[str, str] = {}
        self.loads: list[str] = []
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("type") == "application/json":
            self._current = attrs["id"]
            self.blocks[self._current] = ""
        if tag == "script" and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag == "link" and attrs.get("href") and not attrs["href"].startswith("data:"):
            self.loads.append(attrs["href"])

    def handle_data(self, text):
        if self._current:
            self.blocks[self._current] += text

    def handle_endtag(self, tag):
        if tag == "script":
            self._current = None


def parse(html: str) -> _Blocks:
    parser = _Blocks()
    parser.feed(html)
    return parser


def tables(html: str) -> list[dict]:
    return [
        json.loads(text)
        for key, text in parse(html).blocks.items()
        if key.startswith("gridmap-table-")
    ]


# -- assets ----------------------------------------------------------------------------
def test_every_asset_is_installed_and_served_by_version(store):
    store.check()
    for name, asset in ASSETS.items():
        url = store.url(name, "/static/vendor/")
        assert url.startswith(f"/static/vendor/{asset.package}@")
        assert store.file(url.removeprefix("/static/vendor/")) is not None, name
    assert store.version("leaflet") == "1.9.4"


def test_files_outside_the_packages_or_of_stale_versions_are_not_served(store):
    assert store.file("leaflet@1.9.4/dist/images/marker-icon.png") is not None
    assert store.file("leaflet@1.9.4/../../package-lock.json") is None
    assert store.file("leaflet@1.9.4/package.json") is None  # not a served suffix
    assert store.file("leaflet@0.7.7/dist/leaflet.js") is None
    assert store.file("left-pad@1.0.0/index.js") is None


def test_every_folium_asset_the_pages_use_has_a_local_copy():
    for element in (folium.Map, MarkerCluster, HeatMap, Search):
        for name, _ in [*element.default_js, *element.default_css]:
            assert name in ASSETS or name in DROPPED, (element.__name__, name)


def test_an_asset_without_a_local_copy_is_an_error_not_a_cdn_link(store):
    m = folium.Map(tiles=None)
    folium.plugins.Fullscreen().add_to(m)
    with pytest.raises(AssetError, match="no local copy"):
        localize(m.get_root(), store, "/static/vendor/")


def test_missing_packages_name_the_fix(tmp_path):
    with pytest.raises(AssetError, match="install_assets.sh"):
        AssetStore(tmp_path).check()


def test_localizing_leaves_folium_itself_untouched(page):
    assert folium.Map.default_js[0][1].startswith("https://")
    assert "cdn.jsdelivr.net" in folium.Map(tiles=None).get_root().render()


# -- the district page -----------------------------------------------------------------
def test_the_served_page_names_no_other_host_and_loads_only_local_assets(page, store):
    assert URL.findall(page) == []
    loads = parse(page).loads
    assert loads and all(u.startswith("/static/vendor/") for u in loads), loads
    for url in loads:
        assert store.file(url.removeprefix("/static/vendor/")) is not None, url


def test_the_page_stays_under_three_megabytes(page):
    assert len(page.encode("utf-8")) <= 3_000_000


def grid_table(html: str) -> dict:
    return next(t for t in tables(html) if "staff" in t["columns"] and "hot" in t["columns"])


def test_the_page_holds_every_layer(page, data):
    grids = grid_table(page)
    assert len(grids["ids"]) == 620 == len(set(grids["ids"]))
    micro = [t for t in tables(page) if len(t["ids"]) == len(data.level("micro_grid"))]
    assert micro and micro[0]["rows"][0][0] == micro[0]["ids"][0]
    for label in (
        "网格 grids (620)",
        "微网格 micro-grids (5,490)",
        "热点 hot spots (Gi*)",
        "事件数 choropleth",
        "覆盖缺陷 coverage defects",
        "网格外事件",
        "事件聚类 incidents (5,000 of 50,000 sampled)",
        "热力 heat",
        "社区 communities (89)",
        "街道 streets (8)",
    ):
        assert label in page, label
    assert "L.Control.Search" in page and "L.control.layers" in page


def planted_window(hotspot: dict) -> Selection:
    end = pd.Timestamp(hotspot["end"]) + pd.Timedelta(days=1)  # the record's end is inclusive
    return Selection.parse(str(hotspot["start"]), str(end.date()), hotspot["category"])


def test_hot_spots_draw_exactly_the_significant_grids(data, page):
    stats = analysis.grid_stats(data, Selection(), SERVED.permutations)
    significant = int((stats["bin"] != 0).sum())
    hot = [t for t in tables(page) if t["pick"] is not None and len(t["ids"]) == significant]
    assert hot and significant > 0
    assert set(hot[0]["ids"]) == set(stats.loc[stats["bin"] != 0, "code"])


def test_the_planted_hot_spots_are_drawn_at_99_percent(data, demo, store):
    hotspot = demo.planted["hotspots"][0]
    options = PageOptions(asset_prefix="/static/vendor/", permutations=0)
    html = build_map_page(data, planted_window(hotspot), "count", options, store)
    stats = analysis.grid_stats(data, planted_window(hotspot), 0)
    hot99 = set(stats.loc[stats["bin"] == 3, "code"])
    assert set(hotspot["grid_codes"]) <= hot99
    drawn = next(
        t
        for t in tables(html)
        if t["pick"] is not None and len(t["ids"]) == int((stats["bin"] != 0).sum())
    )
    assert hot99 <= set(drawn["ids"])
    tips = {row[0]: row for row in grid_table(html)["rows"]}
    assert all(tips[c][-1].startswith("hot spot, 99 %") for c in hotspot["grid_codes"])


def test_tooltips_carry_code_name_staff_and_counts(page, data):
    grids = grid_table(page)
    row = dict(zip(grids["columns"], grids["rows"][1], strict=True))
    code = grids["ids"][1]
    assert row["code"] == code
    assert row["name"] == data.level("grid").set_index("code").loc[code, "name"]
    assert "网格" in row["staff"] and row["count"] >= 0
    counts = data.incidents["grid_code"].value_counts()
    assert row["count"] == counts.get(code, 0)


def test_chinese_text_is_written_as_utf8_not_escapes(page):
    assert "\\u7f51" not in page and "网格" in page


def test_a_window_category_and_source_select_the_incidents(data, store):
    sel = Selection.parse("2023-03-01", "2023-06-01", "04", "hotline_12345")
    chosen = analysis.select_incidents(data, sel)
    times = chosen["reported_at"]
    assert len(chosen) and times.min() >= sel.start and times.max() < sel.end
    assert chosen["category"].str.startswith("04").all()
    assert set(chosen["source"]) == {"hotline_12345"}
    stats = analysis.grid_stats(data, sel, 0)
    assert stats["count"].sum() + stats.attrs["unassigned"] == len(chosen)
    html = build_map_page(data, sel, "rate_per_1000", SERVED, store)
    assert "2023-03-01 – 2023-06-01; category 04; source hotline_12345" in html
    assert "incidents per 1,000 residents" in html


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("2023-13-01", None), "start must be"),
        (("2023-06-01", "2023-03-01"), "must be after"),
        ((None, None, "04a"), "category must be digits"),
        ((None, None, None, 7), "source must be strings"),
    ],
)
def test_bad_selections_are_refused(args, match):
    with pytest.raises(ValidationError, match=match):
        Selection.parse(*args)


def test_naive_times_are_china_standard_time():
    sel = Selection.parse("2023-03-01", "2023-03-02T08:00:00+00:00")
    assert str(sel.start) == "2023-03-01 00:00:00+08:00"
    assert str(sel.end) == "2023-03-02 16:00:00+08:00"


# -- coverage on the map ---------------------------------------------------------------
def variant(data: MapData) -> MapData:
    """A copy to change (frames shared until replaced), with an empty cache."""
    return MapData(
        data.generation,
        dict(data.areas),
        data.staff,
        data.incidents,
        (*data.fingerprint, "variant"),
    )


def test_defects_appear_in_the_alarm_layer(data, store):
    """A grid removed (a gap) and a grid's staff removed (unstaffed) reach the page."""
    flawed = variant(data)
    grids = flawed.areas["grid"]
    gone, idle = grids["code"].iloc[100], grids["code"].iloc[200]
    flawed.areas["grid"] = grids[grids["code"] != gone].reset_index(drop=True)
    micro_of = dict(
        zip(
            flawed.areas["micro_grid"]["code"],
            flawed.areas["micro_grid"]["parent_code"],
            strict=True,
        )
    )
    staff = flawed.staff
    flawed.staff = staff[(staff["area_code"] != idle) & (staff["area_code"].map(micro_of) != idle)]
    html = build_map_page(flawed, Selection(), "count", SERVED, store)
    defects = next(t for t in tables(html) if t["columns"][:2] == ["type", "level"])
    rows = [dict(zip(defects["columns"], r, strict=True)) for r in defects["rows"]]
    assert {r["type"] for r in rows} >= {"gap", "unstaffed"}
    assert any(r["type"] == "gap" and gone[:12] in r["codes"] for r in rows)
    assert any(r["type"] == "unstaffed" and r["codes"] == idle for r in rows)
    assert "覆盖缺陷 coverage defects (" in html


# -- basemaps and GCJ-02 ---------------------------------------------------------------
def test_a_gcj02_basemap_gets_gcj02_geometry(data, store):
    amap = PageOptions(basemap=PRESETS["amap"], asset_prefix="/static/vendor/", permutations=0)
    wgs = parse(build_map_page(data, Selection(), "count", SERVED, store)).blocks
    gcj_page = build_map_page(data, Selection(), "count", amap, store)
    gcj = parse(gcj_page).blocks
    first = first_point(json.loads(wgs["gridmap-geom-grid"])[0]["coordinates"])
    shifted = first_point(json.loads(gcj["gridmap-geom-grid"])[0]["coordinates"])
    expected = crs_mod.from_wgs84(first[0], first[1], "gcj02")
    assert shifted == pytest.approx([float(v) for v in expected], abs=2e-6)
    metres = np.hypot((shifted[0] - first[0]) * 92_000, (shifted[1] - first[1]) * 111_000)
    assert 100 < metres < 800
    hosts = {u.split("/")[2] for u in URL.findall(gcj_page)}
    assert hosts == {"webrd0{s}.is.autonavi.com"}


def first_point(coordinates):
    while isinstance(coordinates[0], list):
        coordinates = coordinates[0]
    return coordinates


def test_basemap_names_and_templates():
    assert resolve_basemap(None).url is None
    assert resolve_basemap("AMAP").crs == "gcj02"
    custom = resolve_basemap("http://tiles.intranet/{z}/{x}/{y}.png", crs="gcj02")
    assert (custom.name, custom.crs) == ("custom", "gcj02")
    assert resolve_basemap("/tiles/{z}/{x}/{y}.png").url == "/tiles/{z}/{x}/{y}.png"
    for bad in (
        "tiles.example/{z}/{x}.png",
        'http://x/{z}/{x}/{y}.png" onload="x',
        "javascript:alert(1)//{z}{x}{y}",
    ):
        with pytest.raises(ValidationError):
            resolve_basemap(bad)
    with pytest.raises(ValidationError, match="drawn in gcj02"):
        resolve_basemap("amap", crs="wgs84")
    with pytest.raises(ValidationError, match="crs must be"):
        resolve_basemap("osm", crs="bd09")


# -- standalone HTML -------------------------------------------------------------------
def test_the_standalone_page_inlines_everything(data, store):
    html = build_map_page(data, Selection(), "count", PageOptions(permutations=0), store)
    assert parse(html).loads == []
    styles = "".join(re.findall(r"<style>(.*?)</style>", html, re.DOTALL))
    refs = re.findall(r"url\(\s*['\"]?([^'\")]+)", styles)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [
        r for r in refs if not r.startswith("data:")
    ][:5]
    assert "L.markerClusterGroup" in html and "leaflet-search" in html.lower()


# -- data safety -----------------------------------------------------------------------
def test_names_cannot_break_out_of_the_page(data, store):
    tricky = variant(data)
    grids = tricky.areas["grid"].copy()
    grids.loc[0, "name"] = "</script><script>alert(1)</script>{{ 7*7 }}<!--"
    tricky.areas["grid"] = grids
    html = build_map_page(tricky, Selection(), "count", SERVED, store)
    assert "<script>alert(1)" not in html
    assert grid_table(html)["rows"][0][1] == "</script><script>alert(1)</script>{{ 7*7 }}<!--"


def test_only_real_unicode_escapes_are_compacted():
    assert _compact_unicode(r'"\u7f51"') == '"网"'
    assert _compact_unicode(r'"\\u7f51"') == r'"\\u7f51"'  # a backslash, then text
    assert _compact_unicode(r'"\\\u7f51"') == '"\\\\网"'
    assert _compact_unicode(r'"\u003c"') == r'"\u003c"'  # HTML-sensitive stays escaped


# -- one grid --------------------------------------------------------------------------
def test_the_grid_page_zooms_on_one_grid_with_its_micro_grids(data, store):
    code = "411002003001003"
    html = build_grid_page(data, code, Selection(), SERVED, store)
    micro = data.level("micro_grid")
    own = set(micro.loc[micro["parent_code"] == code, "code"])
    found = [t for t in tables(html) if set(t["ids"]) == own]
    assert found and "staff" in found[0]["columns"]
    incidents = (data.incidents["grid_code"] == code).sum()
    assert f"事件 incidents ({incidents:,})" in html
    assert code in html and "← district map" in html
    assert URL.findall(html) == []


def test_an_unknown_grid_is_not_found(data, store):
    from app.errors import NotFoundError

    with pytest.raises(NotFoundError):
        build_grid_page(data, "411002999999999", Selection(), SERVED, store)


# -- the service and the endpoints (demo database) -------------------------------------
@pytest.fixture(scope="module")
def client(demo_engine):
    """An app on the demo database, no warm-up, no index polling, 99 Gi* permutations."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.helpers import engine_url

    settings = Settings(
        database_url=engine_url(demo_engine),
        api=ApiSettings(index_refresh_seconds=0),
        maps=MapSettings(warm_on_startup=False, permutations=99),
    )
    with TestClient(create_app(settings)) as started:
        yield started


@pytest.mark.db
def test_map_endpoint_serves_the_page_and_every_asset(client):
    response = client.get("/map")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert URL.findall(html) == []
    for url in parse(html).loads:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert "immutable" in asset.headers["cache-control"]
    again = client.get("/map", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    image = client.get(parse(html).loads[0].replace("dist/leaflet.js", "dist/images/layers.png"))
    assert image.headers["content-type"] == "image/png"


@pytest.mark.db
def test_map_parameters_are_checked(client, demo_keys):
    assert client.get("/map?category=04x").status_code == 422
    assert client.get("/map?start=2023-02-30").status_code == 422
    assert client.get("/map?measure=mean").status_code == 422
    assert client.get("/map?basemap=http://evil/{z}/{x}/{y}").status_code == 422
    assert client.get("/static/vendor/leaflet@1.9.4/../../../etc/passwd").status_code == 404
    page = client.get(
        "/map?start=2023-01-01&end=2023-02-01&category=04&basemap=amap",
        headers=demo_keys["viewer"],  # the selection is an incident layer's: not public
    ).text
    assert "2023-01-01 – 2023-02-01; category 04" in page
    assert {u.split("/")[2] for u in URL.findall(page)} == {"webrd0{s}.is.autonavi.com"}
    assert "/map/grids/{code}?start=2023-01-01" in page  # links keep the selection


@pytest.mark.db
def test_grid_page_endpoint(client):
    assert client.get("/map/grids/411002003001003").status_code == 200
    missing = client.get("/map/grids/411002999999999")
    assert missing.status_code == 404 and "no grid" in missing.json()["detail"]
    assert client.get("/map/grids/abc").status_code == 422


@pytest.mark.db
def test_coverage_endpoint_on_the_clean_demo(client):
    doc = client.get("/coverage").json()
    assert doc["type"] == "FeatureCollection"
    counts = doc["summary"]["defects"]
    # the clean demo: no gap, overlap, unstaffed grid or incident outside
    assert not any(counts.values()) and doc["features"] == []
    assert doc["summary"]["coverage_ratio"]["grid"] > 0.9999
    assert client.get("/coverage?types=gap,overlap").json()["features"] == []
    assert client.get("/coverage?types=holes").status_code == 422
    assert client.get("/coverage?generation=nope").status_code == 404


@pytest.mark.db
def test_hotspots_endpoint(client, demo, demo_keys):
    key = demo_keys["viewer"]  # per-grid counts are incident data: not public
    assert client.get("/hotspots?permutations=0").status_code == 401
    doc = client.get("/hotspots?permutations=99", headers=key).json()
    assert len(doc["features"]) == 620
    props = doc["features"][0]["properties"]
    assert {"code", "count", "z", "p", "bin", "class", "rate_per_1000"} <= set(props)
    assert doc["summary"]["selected"] == len(demo.incidents)
    assert sum(doc["summary"]["bins"].values()) == 620
    public = client.get(
        "/hotspots?category=04&start=2023-03-01&end=2023-06-01"
        "&permutations=0&fdr=true&geometry=false",
        headers=key,
    ).json()
    assert public["features"][0]["geometry"] is None
    assert 0 < public["summary"]["selected"] < doc["summary"]["selected"]
    hotspot = demo.planted["hotspots"][1]
    window = planted_window(hotspot)
    query = (
        f"/hotspots?start={window.start.date()}&end={window.end.date()}"
        f"&category={hotspot['category']}&permutations=499&seed=7&geometry=false"
    )
    hot = {
        f["id"]
        for f in client.get(query, headers=key).json()["features"]
        if f["properties"]["bin"] == 3
    }
    assert set(hotspot["grid_codes"]) <= hot
    assert client.get("/hotspots?alpha=0.2", headers=key).status_code == 422


@pytest.mark.db
def test_database_data_match_the_demo(client, demo):
    maps = client.app.state.gridmap.map_data
    data = maps.data()
    assert {lv: len(f) for lv, f in data.areas.items()} == {
        "district": 1,
        "street": 8,
        "community": 89,
        "grid": 620,
        "micro_grid": len(demo.micro_grids),
    }
    assert len(data.incidents) == len(demo.incidents) and len(data.staff) == len(demo.staff)
    assert str(data.incidents["reported_at"].dt.tz) == "Asia/Shanghai"
    assert data.incidents["category"].str.len().eq(4).all()  # leading zeros kept
    assert maps.data() is data  # unchanged database: cached


@pytest.mark.db
def test_one_data_version_serves_the_lookup_index_and_the_maps(client, demo_engine):
    """A new incident reloads the map data but leaves the lookup index as it is."""
    state = client.app.state.gridmap
    data = state.map_data.data()
    insert = text(
        "INSERT INTO incident (source, external_id, location_status, location) "
        "VALUES ('patrol', 'version-test', 'located', "
        "ST_SetSRID(ST_MakePoint(113.6, 34.0), 4326))"
    )
    with demo_engine.begin() as conn:
        conn.execute(insert)
    try:
        assert state.registry.refresh() is False  # asks the version now: areas unchanged
        reloaded = state.map_data.data()  # the same version, already asked: no wait
        assert reloaded is not data and len(reloaded.incidents) == len(data.incidents) + 1
    finally:
        with demo_engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE external_id = 'version-test'"))
        state.version.check()


# -- CLI -------------------------------------------------------------------------------
@pytest.fixture
def cli_env(demo_engine, monkeypatch):
    from tests.helpers import engine_url

    monkeypatch.setenv("GRIDMAP_DATABASE_URL", engine_url(demo_engine))
    from typer.testing import CliRunner

    from app.cli import app

    return lambda *args: CliRunner().invoke(app, list(args))


@pytest.mark.db
def test_cli_coverage_strict(cli_env, demo_engine):
    clean = cli_env("coverage", "--strict")
    assert clean.exit_code == 0, clean.output
    assert "no defects" in clean.output
    # One incident 20 km west of the district: --strict must fail on it. Removed after.
    insert = text(
        "INSERT INTO incident (source, external_id, location_status, location) "
        "VALUES ('patrol', 'strict-test', 'located', "
        "ST_SetSRID(ST_MakePoint(113.6, 34.0), 4326))"
    )
    with demo_engine.begin() as conn:
        conn.execute(insert)
    try:
        stray = cli_env("coverage", "--strict")
    finally:
        with demo_engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE external_id = 'strict-test'"))
    assert stray.exit_code == 1, stray.output
    assert "outside_incident" in stray.output or "covered by no grid" in stray.output


@pytest.mark.db
def test_cli_hotspots_and_map(cli_env, tmp_path):
    out = tmp_path / "hot.geojson"
    result = cli_env("hotspots", "--category", "04", "--permutations", "99", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["features"]) == 620
    page = tmp_path / "map.html"
    result = cli_env("map", "-o", str(page), "--start", "2023-06-01")
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert parse(html).loads == [] and "gridmapRegister" in html
