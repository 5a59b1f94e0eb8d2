"""The demo district generator (gis.demo) and the category taxonomy (gis.taxonomy).

The demo is built once per module (clean, 50,000 incidents) and once with
planted defects and fewer incidents; a third build checks determinism.
"""

from __future__ import annotations

import hashlib

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.areas import AREA_COLUMNS as STORED_AREA_COLUMNS
from gis.codes import DEFAULT_SCHEME, LEVELS
from gis.demo import DemoDistrict, build_demo
from gis.demo.incidents import PERIOD_END
from gis.errors import ValidationError
from gis.incidents import STEP_COLUMNS, _impossible
from gis.taxonomy import TAXONOMY_COLUMNS, load_taxonomy
from gis.vocabulary import HANDLING_LEVELS, INCIDENT_STATUSES

#: The columns of a stored area layer, but for ``area_m2`` (the import computes it).
AREA_COLUMNS = [c for c in STORED_AREA_COLUMNS if c != "area_m2"]
METRIC = "EPSG:4547"
N_SMALL = 5_000


@pytest.fixture(scope="module")
def demo() -> DemoDistrict:
    return build_demo()


@pytest.fixture(scope="module")
def flawed() -> DemoDistrict:
    return build_demo(defects=True, n_incidents=N_SMALL)


def _levels(d: DemoDistrict) -> dict[str, gpd.GeoDataFrame]:
    return {
        "district": d.district,
        "street": d.streets,
        "community": d.communities,
        "grid": d.grids,
        "micro_grid": d.micro_grids,
    }


def _pairs():
    return list(zip(LEVELS[:-1], LEVELS[1:], strict=True))


def _metric_area(geoms) -> np.ndarray:
    return gpd.GeoSeries(list(geoms), crs=4326).to_crs(METRIC).area.to_numpy()


def _digest(frame: pd.DataFrame) -> str:
    frame = pd.DataFrame(frame).copy()
    if "geometry" in frame:
        frame["geometry"] = shapely.to_wkb(np.asarray(frame["geometry"]), hex=True)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype(str)
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    ).hexdigest()


# -- counts, columns, codes -----------------------------------------------------------------
def test_exact_counts(demo):
    s = demo.summary()
    assert (s["districts"], s["streets"], s["communities"], s["grids"]) == (1, 8, 89, 620)
    assert 5_000 <= s["micro_grids"] <= 6_000
    assert 0.05 <= s["dedicated_grids"] / 620 <= 0.08
    assert s["incidents"] == 50_000
    assert 3_000 <= s["gazetteer"] <= 20_000
    assert s["staff"] == len(demo.staff) > 620


def test_area_frames_have_the_contract_columns(demo):
    kinds = {
        "district": {"administrative"},
        "street": {"administrative"},
        "community": {"administrative"},
        "grid": {"comprehensive", "dedicated"},
        "micro_grid": {"micro"},
    }
    for level, frame in _levels(demo).items():
        assert list(frame.columns) == AREA_COLUMNS
        assert frame.crs.to_epsg() == 4326
        assert (frame["level"] == level).all()
        assert set(frame["kind"]) <= kinds[level]
        assert frame["population"].dtype.kind == "i" and frame["households"].dtype.kind == "i"
        assert (frame["population"] >= 0).all() and (frame["households"] >= 0).all()
        assert frame["name"].str.len().min() > 0 and frame["responsible"].str.len().min() > 0
        assert frame["code"].is_unique
    assert demo.district["parent_code"].iloc[0] is None
    assert demo.district["code"].iloc[0] == "411002"
    assert demo.district["name"].iloc[0] == "魏都区"
    assert demo.streets["name"].str.endswith("街道").all()
    assert demo.communities["name"].str.endswith("社区").all()
    assert demo.communities["name"].is_unique
    comprehensive = demo.grids[demo.grids["kind"] == "comprehensive"]
    assert comprehensive["name"].str.fullmatch(r".+街道.+社区第\d+网格").all()
    dedicated = demo.grids[demo.grids["kind"] == "dedicated"]
    assert dedicated["name"].str.endswith("专属网格").all()
    # the responsible party of a dedicated grid is its institution, not the street office
    assert not dedicated["responsible"].str.endswith("办事处").any()
    assert comprehensive["responsible"].str.endswith("街道办事处").all()


def test_areas_and_summary(demo):
    areas = demo.areas()
    assert len(areas) == sum(len(f) for f in _levels(demo).values())
    assert areas["level"].iloc[0] == "district"
    assert list(areas["level"].drop_duplicates()) == list(LEVELS)
    assert list(areas.columns) == AREA_COLUMNS and areas.crs.to_epsg() == 4326


def test_codes_are_valid_and_numbered_west_east_north_south(demo):
    levels = _levels(demo)
    for level, frame in levels.items():
        for code in frame["code"]:
            assert DEFAULT_SCHEME.validate(code, level) == code
    for parent_level, child_level in _pairs():
        parents, children = levels[parent_level], levels[child_level]
        assert set(children["parent_code"]) == set(parents["code"])
        for parent, group in children.groupby("parent_code"):
            assert all(code.startswith(parent) for code in group["code"])
            assert (group["code"].map(DEFAULT_SCHEME.parent) == parent).all()
            sequence = sorted(int(code[len(parent) :]) for code in group["code"])
            assert sequence == list(range(1, len(group) + 1))
            expected = DEFAULT_SCHEME.number_children(parent, list(group.geometry))
            assert list(group["code"]) == expected


# -- geometry ------------------------------------------------------------------------------
def test_geometries_are_valid_single_polygons(demo):
    for frame in _levels(demo).values():
        geoms = frame.geometry.to_numpy()
        assert shapely.is_valid(geoms).all()
        assert (shapely.get_type_id(geoms) == 3).all()  # contiguous: one Polygon each
        # coordinates rounded to 1e-7 degrees
        coords = shapely.get_coordinates(geoms)
        assert np.allclose(coords, np.round(coords, 7), rtol=0, atol=1e-12)


def test_place_and_size(demo):
    district = demo.district.to_crs(METRIC)
    assert district.area.iloc[0] == pytest.approx(88e6, rel=0.01)
    centre = demo.district.geometry.iloc[0].centroid
    assert abs(centre.x - 113.82) < 0.02 and abs(centre.y - 34.03) < 0.02
    hull = district.geometry.iloc[0].minimum_rotated_rectangle
    assert district.area.iloc[0] < 0.9 * hull.area  # an irregular outline, not a rectangle


def test_every_child_lies_in_its_parent(demo):
    levels = _levels(demo)
    for parent_level, child_level in _pairs():
        parents = levels[parent_level].set_index("code").geometry
        children = levels[child_level]
        parent_geoms = parents.loc[children["parent_code"]].to_numpy()
        outside = shapely.area(shapely.difference(children.geometry.to_numpy(), parent_geoms))
        assert (outside <= 1e-9 * shapely.area(children.geometry.to_numpy())).all()


def test_clean_demo_tiles_every_level_exactly(demo):
    levels = _levels(demo)
    for parent_level, child_level in _pairs():
        parents = levels[parent_level].set_index("code")
        children = levels[child_level]
        child_area = pd.Series(_metric_area(children.geometry), index=children.index)
        sums = child_area.groupby(children["parent_code"]).sum()
        parent_area = pd.Series(_metric_area(parents.geometry), index=parents.index)
        assert np.allclose(sums.loc[parent_area.index], parent_area, rtol=1e-6, atol=0)
        for code, group in children.groupby("parent_code"):
            union = shapely.union_all(group.geometry.to_numpy())
            difference = shapely.symmetric_difference(union, parents.geometry.loc[code])
            assert difference.area <= 1e-9 * union.area
        # neighbours share edges exactly: a valid coverage has no overlaps or slivers
        assert shapely.coverage_is_valid(children.geometry.to_numpy())
        _assert_no_overlaps(children.geometry.to_numpy())


def _assert_no_overlaps(geoms: np.ndarray, tolerance: float = 0.0) -> list[tuple[int, int]]:
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    area = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    found = [(int(i), int(j)) for i, j, a in zip(left, right, area, strict=True) if a > tolerance]
    if tolerance == 0.0:
        assert not found
    return found


def test_household_and_population_sums_through_the_levels(demo):
    levels = _levels(demo)
    for parent_level, child_level in _pairs():
        parents = levels[parent_level].set_index("code")
        sums = levels[child_level].groupby("parent_code")[["households", "population"]].sum()
        assert (sums.loc[parents.index, "households"] == parents["households"]).all()
        assert (sums.loc[parents.index, "population"] == parents["population"]).all()


def test_grid_workload_varies_like_a_real_one(demo):
    grids = demo.grids
    for column in ("households", "population"):
        cv = grids[column].std(ddof=0) / grids[column].mean()
        assert 0.35 <= cv <= 0.65, (column, cv)
    comprehensive = grids[grids["kind"] == "comprehensive"]["households"]
    assert 0.3 <= comprehensive.std(ddof=0) / comprehensive.mean() <= 0.65
    assert 260 <= grids["households"].mean() <= 340
    assert 850 <= grids["population"].mean() <= 1150
    micro_per_grid = demo.micro_grids.groupby("parent_code").size()
    assert 8 <= micro_per_grid.mean() <= 10


def test_dense_old_town_and_sparser_edges(demo):
    grids = demo.grids.to_crs(METRIC)
    centre = demo.district.to_crs(METRIC).geometry.iloc[0].centroid
    distance = grids.geometry.centroid.distance(centre)
    density = grids["households"] / grids.area
    inner = density[distance < distance.quantile(0.2)].median()
    outer = density[distance > distance.quantile(0.8)].median()
    assert inner > 2 * outer


def test_roads(demo):
    roads = demo.roads
    assert set(roads["road_class"]) == {"arterial", "secondary", "local", "river"}
    assert (roads.geometry.geom_type == "LineString").all()
    assert roads.crs.to_epsg() == 4326
    assert roads["name"].str.len().min() > 0
    assert {"清潩河", "护城河"} <= set(roads["name"])


# -- staff ---------------------------------------------------------------------------------
def test_staff_roster(demo):
    staff = demo.staff
    assert list(staff.columns) == ["name", "role", "area_code", "phone"]
    assert set(staff["role"]) == {
        "grid_leader",
        "grid_worker",
        "micro_grid_worker",
        "dedicated_grid_leader",
    }
    assert staff["phone"].str.fullmatch(r"1[3-9]\d{9}").all() and staff["phone"].is_unique
    assert staff["name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    codes = set(demo.grids["code"]) | set(demo.micro_grids["code"])
    assert set(staff["area_code"]) <= codes
    micro_roles = staff[staff["area_code"].str.len() == 18]["role"]
    assert (micro_roles == "micro_grid_worker").all()
    workers = staff[staff["role"] == "grid_worker"].groupby("area_code").size()
    assert set(demo.grids["code"]) <= set(workers.index)  # every grid has a grid worker
    leaders = set(staff.loc[staff["role"] == "dedicated_grid_leader", "area_code"])
    assert leaders == set(demo.grids.loc[demo.grids["kind"] == "dedicated", "code"])


def test_clean_demo_plants_nothing(demo):
    assert demo.planted["gap"] is None and demo.planted["overlap"] is None
    assert demo.planted["unstaffed"] == []


# -- planted defects -----------------------------------------------------------------------
def test_planted_gap(flawed):
    gap = flawed.planted["gap"]
    piece = shapely.from_wkt(gap["wkt"])
    assert shapely.equals(piece, gap["geometry"])
    assert piece.is_valid and piece.area > 0
    area = _metric_area([piece])[0]
    assert area == pytest.approx(gap["area_m2"], rel=1e-9)
    assert 500 < area < 20_000
    grids = flawed.grids.geometry.to_numpy()
    covered = shapely.area(shapely.intersection(grids, piece)).sum()
    assert covered <= 1e-6 * piece.area  # no grid covers it …
    community = flawed.communities.set_index("code").geometry.loc[gap["community_code"]]
    # … but its community does
    assert shapely.area(shapely.difference(piece, community)) <= 1e-9 * piece.area
    assert gap["grid_code"].startswith(gap["community_code"])
    assert gap["micro_grid_code"].startswith(gap["grid_code"])
    micro = flawed.micro_grids.geometry.to_numpy()
    assert shapely.area(shapely.intersection(micro, piece)).sum() <= 1e-6 * piece.area
    # it is the only hole in the grid layer
    holes = shapely.difference(flawed.district.geometry.iloc[0], shapely.union_all(grids))
    assert _metric_area([holes])[0] == pytest.approx(area, rel=1e-3)


def test_planted_overlap(flawed):
    over = flawed.planted["overlap"]
    grids = flawed.grids.set_index("code").geometry
    found = shapely.intersection(grids.loc[over["grid_code"]], grids.loc[over["neighbor_code"]])
    assert _metric_area([found])[0] == pytest.approx(over["area_m2"], rel=1e-3)
    assert 0.01 <= over["neighbor_share"] <= 0.03
    assert over["grid_code"][:12] == over["neighbor_code"][:12] == over["community_code"]
    assert shapely.equals(shapely.from_wkt(over["wkt"]), over["geometry"])
    # the only overlap of more than a square metre among all grids
    geoms = flawed.grids.geometry.to_numpy()
    pairs = _assert_no_overlaps(geoms, tolerance=1e-10)  # ~1 m² in degrees²
    codes = flawed.grids["code"].to_numpy()
    assert [tuple(sorted((codes[i], codes[j]))) for i, j in pairs] == [
        tuple(sorted((over["grid_code"], over["neighbor_code"])))
    ]


def test_defects_keep_micro_grids_nested(flawed):
    grids = flawed.grids.set_index("code").geometry
    micro = flawed.micro_grids
    parent = grids.loc[micro["parent_code"]].to_numpy()
    outside = shapely.area(shapely.difference(micro.geometry.to_numpy(), parent))
    assert (outside <= 1e-9 * shapely.area(micro.geometry.to_numpy())).all()
    for frame in _levels(flawed).values():
        assert shapely.is_valid(frame.geometry.to_numpy()).all()
        assert shapely.is_empty(frame.geometry.to_numpy()).sum() == 0


def test_planted_unstaffed_grids(flawed):
    unstaffed = flawed.planted["unstaffed"]
    assert len(unstaffed) == 3 and set(unstaffed) <= set(flawed.grids["code"])
    staffed = set(flawed.staff["area_code"].str[:15])
    assert set(flawed.grids["code"]) - staffed == set(unstaffed)
    defect_grids = {flawed.planted["gap"]["grid_code"], flawed.planted["overlap"]["grid_code"]}
    assert not defect_grids & set(unstaffed)


def test_defects_change_nothing_else(demo, flawed):
    # same seed: only the planted grids and micro-grid differ from the clean demo
    changed = {
        flawed.planted["gap"]["grid_code"],
        flawed.planted["overlap"]["grid_code"],
        flawed.planted["gap"]["micro_grid_code"],
    }
    for level in ("grid", "micro_grid"):
        a = _levels(demo)[level].set_index("code").geometry
        b = _levels(flawed)[level].set_index("code").geometry
        differ = set(a.index[~shapely.equals_exact(a.to_numpy(), b.loc[a.index].to_numpy())])
        assert differ <= changed and differ
    assert _digest(demo.communities) == _digest(flawed.communities)


# -- incidents -----------------------------------------------------------------------------
def test_incident_columns_and_shares(demo):
    inc = demo.incidents
    assert list(inc.columns) == [
        "external_id",
        "source",
        "category",
        "description",
        "address",
        "reported_at",
        "lon",
        "lat",
        "crs",
        "true_lon",
        "true_lat",
        "status",
        "handling_level",
        "registered_at",
        "dispatched_at",
        "handled_at",
        "verified_at",
        "closed_at",
    ]
    assert len(inc) == 50_000
    shares = inc["source"].value_counts(normalize=True)
    assert set(shares.index) == {"hotline_12345", "police_110", "patrol", "resident"}
    assert 0.35 <= shares["hotline_12345"] <= 0.5 and 0.25 <= shares["patrol"] <= 0.4
    assert 0.1 <= shares["police_110"] <= 0.2 and 0.08 <= shares["resident"] <= 0.18
    crs = inc["crs"].fillna("none").value_counts(normalize=True)
    assert crs["gcj02"] == pytest.approx(0.15, abs=0.005)
    assert crs["none"] == pytest.approx(0.05, abs=0.005)
    assert set(inc["crs"].dropna()) == {"wgs84", "gcj02"}
    assert inc["address"].str.len().min() > 0 and inc["description"].str.len().min() > 0


def test_incident_categories_and_ids(demo):
    inc = demo.incidents
    taxonomy = load_taxonomy()
    assert set(inc["category"]) <= set(taxonomy["code"])
    assert inc["category"].nunique() == len(taxonomy)
    assert not inc.duplicated(["source", "external_id"]).any()
    assert inc.groupby("source")["external_id"].apply(lambda s: s.str[:2].nunique()).eq(1).all()


def test_incident_times(demo):
    when = demo.incidents["reported_at"]
    assert str(when.dt.tz) == "Asia/Shanghai"
    assert (when.dt.year == 2023).all()
    assert when.is_monotonic_increasing
    hour = when.dt.hour
    assert (hour.between(9, 11)).mean() > 3 * (hour.between(2, 4)).mean()
    patrol = demo.incidents["source"] == "patrol"
    weekday = when[patrol].dt.day_of_week
    assert (weekday < 5).sum() / 5 > 2 * (weekday >= 5).sum() / 2  # patrols work weekdays


def test_incident_locations(demo):
    inc = demo.incidents
    located = inc["crs"].notna()
    only_address = ~located
    assert inc.loc[only_address, ["lon", "lat"]].isna().all().all()
    assert inc.loc[located, ["lon", "lat"]].notna().all().all()
    district = demo.district.geometry.iloc[0]
    assert shapely.contains_xy(district, inc["true_lon"], inc["true_lat"]).all()
    wgs = inc["crs"] == "wgs84"
    assert np.allclose(inc.loc[wgs, "lon"], inc.loc[wgs, "true_lon"], atol=1e-6)
    gcj = inc[inc["crs"] == "gcj02"]
    shift = (
        gpd.GeoSeries.from_xy(gcj["lon"], gcj["lat"], crs=4326)
        .to_crs(METRIC)
        .distance(gpd.GeoSeries.from_xy(gcj["true_lon"], gcj["true_lat"], crs=4326).to_crs(METRIC))
    )
    assert shift.between(100, 700).all()  # the GCJ-02 offset
    # an address-only report sits exactly on a door plate of the gazetteer
    plates = set(zip(demo.gazetteer["lon"], demo.gazetteer["lat"], strict=True))
    truth = zip(inc.loc[only_address, "true_lon"], inc.loc[only_address, "true_lat"], strict=True)
    assert all(point in plates for point in truth)


def test_address_only_reports_are_written_like_people_write(demo):
    written = demo.incidents.loc[demo.incidents["crs"].isna(), "address"]
    assert written.str.contains("[０-９]").mean() > 0.1  # full-width digits
    assert written.str.contains("栋|幢").mean() > 0.05
    assert written.str.contains("单元").mean() > 0.05
    assert written.str.contains(" ").mean() > 0.1
    assert not written.isin(demo.gazetteer["address"]).all()


def test_hotspots_are_recorded_and_strong(demo):
    hotspots = demo.planted["hotspots"]
    assert 3 <= len(hotspots) <= 4
    inc = demo.incidents
    grids = demo.grids
    tree = shapely.STRtree(grids.geometry.to_numpy())
    points = shapely.points(inc["true_lon"], inc["true_lat"])
    idx_point, idx_grid = tree.query(points, predicate="within")
    grid_of = pd.Series(grids["code"].to_numpy()[idx_grid], index=idx_point).reindex(
        range(len(inc))
    )
    taxonomy = set(load_taxonomy()["code"])
    for spot in hotspots:
        assert spot["category"] in taxonomy
        assert 1 <= len(spot["grid_codes"]) <= 8
        assert set(spot["grid_codes"]) <= set(grids["code"])
        assert 150 <= spot["radius_m"] <= 500 and spot["n_incidents"] > 0
        centre = shapely.Point(spot["centre_lon"], spot["centre_lat"])
        assert demo.district.geometry.iloc[0].contains(centre)
        counts = (
            grid_of[inc["category"] == spot["category"]]
            .value_counts()
            .reindex(grids["code"], fill_value=0)
        )
        z = (counts.loc[spot["grid_codes"]].mean() - counts.mean()) / counts.std()
        assert z > 2.58  # far above any other grid's count of that category


# -- histories ------------------------------------------------------------------------------
def _records(inc: pd.DataFrame) -> list[dict]:
    """Each incident's history as the import's row rules read one (None for no time)."""
    columns = ["status", "handling_level", *STEP_COLUMNS]
    frame = inc[columns].astype(object).where(inc[columns].notna(), None)
    return frame.to_dict("records")


def test_every_history_is_one_the_closed_loop_allows(demo):
    inc = demo.incidents
    problems = [
        _impossible(record, reported)
        for record, reported in zip(_records(inc), inc["reported_at"], strict=True)
    ]
    assert [p for p in problems if p is not None] == []
    # steps are reached in order and none after the end of the year
    reached = inc[list(STEP_COLUMNS)].notna().to_numpy()
    assert (reached[:, :-1] >= reached[:, 1:]).all()  # no step without the one before
    status = pd.Index(INCIDENT_STATUSES).get_indexer(inc["status"])
    assert (reached.sum(axis=1) == status).all()
    assert (inc[list(STEP_COLUMNS)].max() < PERIOD_END).all()
    # a level from registration on, never before
    assert (inc["handling_level"].isna() == (inc["status"] == "reported")).all()
    assert set(inc["handling_level"].dropna()) == set(HANDLING_LEVELS)


def test_histories_have_the_proportions_of_the_design(demo):
    inc = demo.incidents
    levels = inc["handling_level"].value_counts(normalize=True)
    assert levels["grid"] == pytest.approx(0.80, abs=0.015)
    assert levels["community"] == pytest.approx(0.15, abs=0.015)
    assert levels["street"] == pytest.approx(0.05, abs=0.01)
    hours = inc["category"].map(load_taxonomy().set_index("code")["deadline_hours"])
    deadline = inc["reported_at"] + pd.to_timedelta(hours, unit="h")
    handled = inc["handled_at"].notna()
    late = inc["handled_at"] > deadline
    assert 0.08 <= late[handled].mean() <= 0.15  # most in time
    by_level = late[handled].groupby(inc["handling_level"][handled]).mean()
    assert by_level["grid"] < by_level["community"] < by_level["street"]  # passed up: later
    assert (inc["status"] == "closed").mean() > 0.95
    # the end of the year is still being worked on: open tickets at every step
    open_ = inc["status"] != "closed"
    assert set(inc.loc[open_, "status"]) == set(INCIDENT_STATUSES) - {"closed"}
    december = inc["reported_at"] >= pd.Timestamp("2023-12-01", tz="Asia/Shanghai")
    first_half = inc["reported_at"] < pd.Timestamp("2023-07-01", tz="Asia/Shanghai")
    assert open_[december].mean() > 0.05 and open_[first_half].mean() < 0.002
    last_day = inc["reported_at"] >= PERIOD_END - pd.Timedelta(days=1)
    assert open_[last_day].mean() > 0.5
    unresolved = inc["status"].isin(["reported", "registered", "dispatched"])
    overdue = unresolved & (deadline < PERIOD_END)
    assert overdue.sum() > 100 and (unresolved & ~overdue).sum() > 0


# -- gazetteer -----------------------------------------------------------------------------
def test_gazetteer(demo):
    gaz = demo.gazetteer
    assert list(gaz.columns) == ["address", "lon", "lat", "micro_grid_code"]
    assert gaz["address"].is_unique
    pattern = r"魏都区.+街道.+社区.+?\d+号(\d+号楼)?"
    assert gaz["address"].str.fullmatch(pattern).all()
    micro = demo.micro_grids.set_index("code").geometry
    polygons = micro.loc[gaz["micro_grid_code"]].to_numpy()
    assert shapely.contains_xy(polygons, gaz["lon"].to_numpy(), gaz["lat"].to_numpy()).all()
    example = gaz["address"].iloc[0]
    community = demo.communities.set_index("code")["name"].loc[gaz["micro_grid_code"].iloc[0][:12]]
    assert community in example


def test_gazetteer_marks_door_plates_in_the_gap(flawed):
    gap = flawed.planted["gap"]["geometry"]
    gaz = flawed.gazetteer
    inside = shapely.contains_xy(gap, gaz["lon"].to_numpy(), gaz["lat"].to_numpy())
    assert gaz.loc[inside, "micro_grid_code"].isna().all()
    assert gaz.loc[~inside, "micro_grid_code"].notna().all()


# -- determinism and arguments ---------------------------------------------------------------
def test_same_seed_same_district(flawed):
    again = build_demo(defects=True, n_incidents=N_SMALL)
    for name in (
        "district",
        "streets",
        "communities",
        "grids",
        "micro_grids",
        "staff",
        "incidents",
        "gazetteer",
        "roads",
    ):
        assert _digest(getattr(again, name)) == _digest(getattr(flawed, name)), name
    assert again.planted["gap"]["wkt"] == flawed.planted["gap"]["wkt"]
    assert again.planted["hotspots"] == flawed.planted["hotspots"]


@pytest.mark.parametrize(
    "kwargs",
    [{"seed": -1}, {"seed": "x"}, {"defects": "yes"}, {"n_incidents": -5}, {"n_incidents": 1.5}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValidationError):
        build_demo(**kwargs)


# -- taxonomy ------------------------------------------------------------------------------
def test_default_taxonomy():
    taxonomy = load_taxonomy()
    assert list(taxonomy.columns) == TAXONOMY_COLUMNS
    assert 12 <= len(taxonomy) <= 20
    majors = taxonomy.drop_duplicates("major_code").set_index("major_code")["major_name_zh"]
    assert majors.to_dict() == {
        "01": "城市运行",
        "02": "公共管理",
        "03": "公共服务",
        "04": "公共安全",
    }
    assert {"乱停乱放", "飞线充电", "食品安全", "街面走失"} <= set(taxonomy["name_zh"])
    assert taxonomy["code"].is_unique
    assert all(
        c.startswith(m) for c, m in zip(taxonomy["code"], taxonomy["major_code"], strict=True)
    )
    assert (taxonomy["deadline_hours"] > 0).all()
    assert taxonomy["deadline_hours"].dtype == np.int64


def _write(tmp_path, rows: list[str], header: str = ",".join(TAXONOMY_COLUMNS)):
    path = tmp_path / "taxonomy.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD = "01,城市运行,City operation,0101,井盖缺失,Missing manhole cover,24"


@pytest.mark.parametrize(
    "row, reason",
    [
        ("01,城市运行,City operation,0101,道路破损,Damaged road,72", "duplicate code"),
        ("01,城市运行,City operation,0201,乱停乱放,Illegal parking,4", "does not extend"),
        ("01,城市运行,City operation,0102,道路破损,Damaged road,-3", "positive whole number"),
        ("01,城市运行,City operation,0102,道路破损,Damaged road,soon", "positive whole number"),
        ("01,城市运行,City operation,0102,道路破损,Damaged road,1.5", "positive whole number"),
        ("01,城市管理,City operation,0102,道路破损,Damaged road,4", "two names"),
        ("01,城市运行,City operation,,道路破损,Damaged road,4", "empty code"),
    ],
)
def test_taxonomy_rejects_bad_rows(tmp_path, row, reason):
    with pytest.raises(ValidationError) as info:
        load_taxonomy(_write(tmp_path, [GOOD, row]))
    assert any(reason in p["reason"] and p["row"] == 2 for p in info.value.problems)


def test_taxonomy_rejects_bad_files(tmp_path):
    with pytest.raises(ValidationError, match="not found"):
        load_taxonomy(tmp_path / "missing.csv")
    with pytest.raises(ValidationError, match="lacks column"):
        load_taxonomy(_write(tmp_path, ["01,x"], header="major_code,code"))
    with pytest.raises(ValidationError, match="no items"):
        load_taxonomy(_write(tmp_path, []))
    latin = tmp_path / "latin1.csv"
    text = ",".join(TAXONOMY_COLUMNS) + "\n01,caf\xe9,x,0101,y,z,4\n"
    latin.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValidationError, match="UTF-8"):
        load_taxonomy(latin)


def test_taxonomy_keeps_leading_zeros(tmp_path):
    taxonomy = load_taxonomy(_write(tmp_path, [GOOD]))
    assert taxonomy["major_code"].iloc[0] == "01" and taxonomy["code"].iloc[0] == "0101"
