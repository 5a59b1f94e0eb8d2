"""The generated city (``gridmap demo --city``), its city view and the binary COPY bulk paths.

Pure tests build the small preset in memory; the others run ``gridmap demo --city
--preset small`` once on this module's database (a pseudo-terminal, as a user runs
it) and check what it stored, what ``/lookup``, ``/stats`` and ``gridmap stats`` /
``hotspots`` answer per district, and that an incident file imported through
binary COPY is stored and assigned as an independent computation says.
"""

from __future__ import annotations

import csv
import datetime as dt
import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from gis.codes import validate
from gis.demo.city import build_city
from tests.helpers import make_client
from tests.terminal import Cli

END = dt.date(2026, 6, 30)
LEVEL_FRAMES = ("district", "streets", "communities", "grids", "micro_grids")
LEVEL_OF = dict(
    zip(LEVEL_FRAMES, ("district", "street", "community", "grid", "micro_grid"), strict=True)
)


@pytest.fixture(scope="module")
def city():
    return build_city(seed=340700, preset="small", end=END)


# -- the generator ----------------------------------------------------------------------
def test_same_seed_same_city_and_another_seed_another(city) -> None:
    again = build_city(seed=340700, preset="small", end=END)
    assert again.summary() == city.summary()
    for name in LEVEL_FRAMES:
        assert getattr(again, name)["code"].tolist() == getattr(city, name)["code"].tolist()
        mine, theirs = getattr(city, name).geometry, getattr(again, name).geometry
        assert shapely.equals_exact(mine.to_numpy(), theirs.to_numpy(), 0).all()
    assert again.incidents["external_id"].tolist() == city.incidents["external_id"].tolist()
    other = build_city(seed=7, preset="small", end=END)
    assert not shapely.equals(
        other.micro_grids.geometry.iloc[0], city.micro_grids.geometry.iloc[0]
    ) or len(other.micro_grids) != len(city.micro_grids)


def test_city_codes_are_valid_unique_and_nest(city) -> None:
    assert len(city.district) == 2
    assert city.district["code"].is_unique
    assert set(city.district["code"].str[:4]) == {"3407"}  # one prefecture, several districts
    codes: set[str] = set()
    for upper, lower in zip(LEVEL_FRAMES, LEVEL_FRAMES[1:], strict=False):
        parents = set(getattr(city, upper)["code"])
        frame = getattr(city, lower)
        assert frame["code"].is_unique
        for code, parent in zip(frame["code"], frame["parent_code"], strict=True):
            validate(code, LEVEL_OF[lower])
            assert parent in parents and code.startswith(parent), (code, parent)
        codes |= set(frame["code"])
    assert len(codes) == sum(len(getattr(city, n)) for n in LEVEL_FRAMES[1:])
    # every micro-grid lies in its district: the districts do not overlap
    district_of = dict(zip(city.district["code"], city.district.geometry, strict=True))
    inside = [
        district_of[code[:6]].covers(geom.representative_point())
        for code, geom in zip(city.micro_grids["code"], city.micro_grids.geometry, strict=True)
    ]
    assert all(inside)


def test_incidents_cover_the_twelve_months_up_to_the_end_day(city) -> None:
    days = city.incidents["reported_at"].dt.tz_convert("Asia/Shanghai").dt.date
    assert days.max() == END and days.min() > END - dt.timedelta(days=366)
    assert city.incidents["external_id"].is_unique
    assert len(city.incidents) == 20_000
    # addresses name their own district, never the demo's
    assert not city.gazetteer["address"].str.contains("魏都区").any()
    assert city.gazetteer["address"].is_unique


def test_histories_are_as_of_the_end_day(city) -> None:
    from gis.incidents import STEP_COLUMNS, _impossible

    inc = city.incidents
    end = pd.Timestamp(END + dt.timedelta(days=1), tz="Asia/Shanghai")
    assert (inc[list(STEP_COLUMNS)].max() < end).all()
    steps = inc[["status", "handling_level", *STEP_COLUMNS]]
    records = steps.astype(object).where(steps.notna(), None).to_dict("records")
    assert all(_impossible(r, t) is None for r, t in zip(records, inc["reported_at"], strict=True))
    recent = inc["reported_at"] >= end - pd.Timedelta(days=7)
    assert (inc.loc[recent, "status"] != "closed").mean() > 0.2  # live work at the end
    assert (inc.loc[~recent, "status"] == "closed").mean() > 0.95


def test_bad_preset_and_counts_are_refused() -> None:
    from gis.errors import ValidationError

    with pytest.raises(ValidationError, match="preset"):
        build_city(preset="huge")
    with pytest.raises(ValidationError, match="n_incidents"):
        build_city(preset="small", n_incidents=-1)


# -- the CLI and the database -----------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(cli: Cli):
    run = cli("demo", "--city", "--preset", "small", timeout=900).ok()
    return run


@pytest.mark.db
@pytest.mark.slow
def test_demo_city_command_stores_the_city(loaded, cli: Cli) -> None:
    expected = build_city(seed=340700, preset="small")  # counts do not depend on the day
    assert "铜陵市 2 个区" in loaded.flat
    assert "━" in loaded.output  # rich drew its bars on the terminal
    for name in LEVEL_FRAMES:
        stored = cli.scalar(
            "SELECT count(*) FROM area a JOIN generation g ON g.is_active "
            "AND a.generation_low <= g.id AND a.generation_high >= g.id "
            "WHERE g.label = 'city' AND a.level = :level",
            level=LEVEL_OF[name],
        )
        assert stored == len(getattr(expected, name)), name
    assert cli.scalar("SELECT count(*) FROM incident") == len(expected.incidents)
    assert cli.scalar(
        "SELECT count(*) FROM staff s JOIN generation g ON g.id = "
        "s.generation_id WHERE g.label = 'city'"
    ) == len(expected.staff)
    again = cli("demo", "--city", "--preset", "small", timeout=900).ok()
    assert "already loaded" in again.flat


@pytest.mark.db
@pytest.mark.slow
def test_lookup_returns_the_district(loaded, cli: Cli, city) -> None:
    with make_client(cli.engine) as client:
        for code, name in zip(city.district["code"], city.district["name"], strict=True):
            micro = city.micro_grids[city.micro_grids["code"].str.startswith(code)].iloc[0]
            point = micro.geometry.representative_point()
            doc = client.get("/lookup", params={"lon": point.x, "lat": point.y}).json()
            assert doc["district"] == {"code": code, "name": name, "kind": "administrative"}
            assert doc["micro_grid"]["code"] == micro["code"]
        batch = client.post("/lookup", json={"lon": [0.0], "lat": [0.0]}).json()
        assert batch["district_code"] == [None]


@pytest.mark.db
@pytest.mark.slow
def test_stats_per_district_add_up_to_the_city(loaded, cli: Cli, city, tmp_path) -> None:
    from app.services.security import create_api_key

    key = {"X-API-Key": create_api_key(cli.engine, "viewer", f"city-{uuid.uuid4().hex[:6]}")}
    with make_client(cli.engine) as client:
        whole = client.get("/stats", params={"level": "street"}, headers=key)
        assert whole.status_code == 200, whole.text
        city_total = whole.json()["rows"][-1]["received"]
        parts = []
        for code in city.district["code"]:
            one = client.get("/stats", params={"level": "street", "district": code}, headers=key)
            rows = one.json()["rows"]
            assert all(str(r["code"]).startswith(code) for r in rows[:-1])
            parts.append(rows[-1]["received"])
        assert city_total == sum(parts) == len(city.incidents) - _unlocated(cli)
        assert all(p > 0 for p in parts)
        bad = client.get("/stats", params={"level": "street", "district": "34x"}, headers=key)
        assert bad.status_code == 422
    out = tmp_path / "district.csv"
    code = str(city.district["code"].iloc[0])
    cli("stats", "--level", "street", "--district", code, "-o", out).ok()
    with out.open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))[1:]
    assert rows[-1][0].startswith("合计") and int(rows[-1][2]) == parts[0]
    assert all(r[0].startswith(code) for r in rows[:-1])


@pytest.mark.db
@pytest.mark.slow
def test_hotspots_per_district(loaded, cli: Cli, city) -> None:
    code = str(city.district["code"].iloc[1])
    run = cli("hotspots", "--district", code, "--permutations", "0", "--top", "5").ok()
    listed = [c for c in city.grids["code"] if c in run.flat]
    assert listed and all(c.startswith(code) for c in listed)
    refused = cli("hotspots", "--district", "12")
    assert refused.code != 0 and "district" in refused.flat


def _unlocated(cli: Cli) -> int:
    return cli.scalar("SELECT count(*) FROM incident WHERE location IS NULL")


# -- binary COPY: the stored rows and their assignment ----------------------------------
@pytest.mark.db
@pytest.mark.slow
def test_binary_copy_import_stores_rows_and_assignments_as_an_sjoin_says(
    loaded, cli: Cli, city, tmp_path
) -> None:
    sample = city.incidents[city.incidents["crs"] == "wgs84"].sample(400, random_state=1)
    rows = pd.DataFrame(
        {
            "external_id": "copytest-" + sample["external_id"],
            "source": sample["source"],
            "category": sample["category"],
            "description": sample["description"],
            "address": sample["address"],
            "reported_at": sample["reported_at"].map(lambda t: t.isoformat()),
            "lon": sample["lon"].map(repr),
            "lat": sample["lat"].map(repr),
        }
    )
    bad = pd.DataFrame(
        {
            "external_id": ["copytest-bad-time", "copytest-bad-lon"],
            "source": ["patrol", "patrol"],
            "category": ["0101", "0101"],
            "description": ["x", "y"],
            "address": ["", ""],
            "reported_at": ["not a time", "2026-01-02T10:00:00+08:00"],
            "lon": ["117.8", "abc"],
            "lat": ["30.9", "30.9"],
        }
    )
    path = tmp_path / "copytest.csv"
    pd.concat([rows, bad]).to_csv(path, index=False)
    cli("incidents", "import", path, "--id-field", "external_id").ok()

    with cli.engine.connect() as conn:
        stored = pd.read_sql(
            text(
                "SELECT external_id, category, description, reported_at, ST_X(location) lon, "
                "ST_Y(location) lat, grid_code, micro_grid_code, assign_status FROM "
                "incident_current WHERE external_id LIKE 'copytest-%'"
            ),
            conn,
        ).set_index("external_id")
        rejected = pd.read_sql(
            text(
                "SELECT r.reason, r.raw FROM rejected_row r JOIN import_batch b ON b.id = "
                "r.batch_id WHERE b.source = :label"
            ),
            conn,
            params={"label": str(path)},
        )
    expected = rows.set_index("external_id")
    assert set(stored.index) == set(expected.index)  # the two bad rows are not stored
    assert (stored.loc[expected.index, "category"] == expected["category"]).all()
    assert (stored.loc[expected.index, "description"] == expected["description"]).all()
    when = pd.to_datetime(expected["reported_at"], utc=True, format="ISO8601")
    assert (pd.to_datetime(stored.loc[expected.index, "reported_at"], utc=True) == when).all()
    assert np.array_equal(stored.loc[expected.index, "lon"], sample["lon"].to_numpy())
    assert np.array_equal(stored.loc[expected.index, "lat"], sample["lat"].to_numpy())
    # the assignment against an independent spatial join of the same points
    points = gpd.GeoDataFrame(
        index=expected.index,
        geometry=gpd.points_from_xy(sample["lon"], sample["lat"]),
        crs="EPSG:4326",
    )
    joined = points.sjoin(city.micro_grids[["code", "geometry"]], predicate="intersects")
    reference = joined.groupby(level=0)["code"].min()
    assert (stored.loc[reference.index, "micro_grid_code"] == reference).all()
    assert (stored.loc[reference.index, "grid_code"] == reference.str[:15]).all()
    assert len(reference) == len(expected)
    # every rejected row is kept with its reason
    assert len(rejected) == 2
    reasons = " ".join(rejected["reason"])
    assert "time" in reasons and ("lon" in reasons or "coordinate" in reasons)


@pytest.mark.db
def test_binary_copy_round_trips_every_type(clean_db) -> None:
    from app.db.bulk import copy_binary, read_binary

    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3], dtype="Int64"),
            "x": [0.5, np.nan, -2.25],
            "t": pd.array(["网格 grid", None, ""], dtype="str"),
            "ts": ["2026-01-02T03:04:05+08:00", None, "1999-12-31T23:59:59.5+00:00"],
            "ok": [True, False, None],
            "g": [shapely.Point(117.8, 30.9), None, shapely.Point(-1, 2)],
        }
    )
    with clean_db.begin() as conn:
        conn.execute(
            text(
                "CREATE TEMP TABLE roundtrip (n bigint, x float8, t text, ts timestamptz, "
                "ok boolean, g geometry(Point, 4326))"
            )
        )
        frame["g"] = [shapely.set_srid(g, 4326) if g is not None else None for g in frame["g"]]
        assert copy_binary(conn, "roundtrip", frame) == 3
        back = conn.execute(
            text("SELECT n, x, t, ts, ok, ST_AsText(g) FROM roundtrip ORDER BY n NULLS LAST")
        ).all()
        ids = read_binary(
            conn, "SELECT n, x FROM roundtrip WHERE n IS NOT NULL ORDER BY n", (">i8", ">f8")
        )
    assert back[0][:3] == (1, 0.5, "网格 grid") and back[0][5] == "POINT(117.8 30.9)"
    assert back[0][3] == dt.datetime(2026, 1, 1, 19, 4, 5, tzinfo=dt.UTC)
    assert back[1][:3] == (3, -2.25, "") and back[1][3].microsecond == 500_000
    assert back[2] == (None, None, None, None, False, None)
    assert back[0][4] is True and back[1][4] is None
    assert ids["f0"].tolist() == [1, 3] and ids["f1"].tolist() == [0.5, -2.25]


@pytest.mark.db
@pytest.mark.slow
def test_a_large_batch_rebuilds_the_indexes_it_deferred(
    loaded, cli: Cli, city, monkeypatch
) -> None:
    from app.db import bulk
    from app.services.assignment import assign_stored
    from app.services.incident_import import import_incidents
    from gis.incidents import FieldMap

    def indexes() -> list[tuple[str, str]]:
        """Name and column list of each index (a rebuilt partial index's predicate may be
        printed differently: PostgreSQL normalises it)."""
        with cli.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
                    "('incident', 'incident_assignment') ORDER BY indexname"
                )
            ).all()
        return [(name, definition.split(" WHERE ")[0]) for name, definition in rows]

    before = indexes()
    on_incident = cli.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'incident'")
    monkeypatch.setattr(bulk, "DEFER_INDEXES_FROM", 1)
    monkeypatch.setattr(bulk, "DEFER_INDEXES_SHARE", 0.0)
    with (  # a failed load is rolled back, the dropped indexes with it
        pytest.raises(RuntimeError),
        cli.engine.begin() as conn,
        bulk.deferred_indexes(conn, ("incident",), 10) as deferred,
    ):
        assert deferred
        dropped = conn.execute(
            text("SELECT count(*) FROM pg_indexes WHERE tablename = 'incident'")
        ).scalar_one()
        assert 0 < dropped < on_incident  # the unique ones stay
        raise RuntimeError("the load failed")
    assert indexes() == before
    sample = city.incidents[city.incidents["crs"] == "wgs84"].head(50)
    raw = pd.DataFrame(
        {
            "external_id": "deferred-" + sample["external_id"],
            "source": sample["source"],
            "category": sample["category"],
            "reported_at": sample["reported_at"].map(lambda t: t.isoformat()),
            "lon": sample["lon"].map(repr),
            "lat": sample["lat"].map(repr),
        }
    )
    report = import_incidents(cli.engine, raw, label="deferred", fields=FieldMap(id="external_id"))
    assert report.stored == 50
    assert assign_stored(cli.engine).assigned == cli.scalar(
        "SELECT count(*) FROM incident WHERE location IS NOT NULL"
    )
    assert indexes() == before
    stored = cli.scalar(
        "SELECT count(*) FROM incident_current WHERE external_id LIKE 'deferred-%' "
        "AND micro_grid_code IS NOT NULL"
    )
    assert stored == 50


def test_a_page_of_several_districts_is_titled_by_the_city(city) -> None:
    from app.maps.page import place_name

    assert place_name(city.district) == "铜陵市 2 个区"
    assert place_name(city.district.iloc[:1]) == city.district["name"].iloc[0]
    unnamed = city.district.assign(responsible=["甲", "乙"])  # no common city: count only
    assert place_name(unnamed) == "2 个区"
