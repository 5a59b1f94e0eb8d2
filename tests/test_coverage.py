"""gis.coverage: gaps, overlaps, slivers, invalid geometry, nesting, unstaffed, outside.

Hand-drawn hierarchies in UTM 49N (metres from a local origin) have answers
known by construction; the demo district is checked clean and with its planted
defects (built once per module each).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from gis.coverage import (
    DEFECT_COLUMNS,
    DEFECT_TYPES,
    CoverageReport,
    check_coverage,
    coverage_summary_table,
    incident_lonlat,
)
from gis.crs import from_wgs84
from gis.demo import DemoDistrict
from gis.errors import CRSError, ValidationError
from tests.helpers import demo_district

UTM = "EPSG:32649"
X0, Y0 = 600_000.0, 3_765_000.0  # local origin, near the demo district
COMMUNITY = "411002001001"


def square(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def town(
    grids: dict[str, Polygon],
    micro: dict[str, tuple[str, Polygon]] | None = None,
    parent: Polygon | None = None,
) -> gpd.GeoDataFrame:
    """One 200 m x 200 m community, the given grids and micro-grids (code -> geometry)."""
    rows = [
        ("411002", "district", None, parent or square(0, 0, 200, 200)),
        ("411002001", "street", "411002", parent or square(0, 0, 200, 200)),
        (COMMUNITY, "community", "411002001", parent or square(0, 0, 200, 200)),
    ]
    rows += [(code, "grid", COMMUNITY, geom) for code, geom in grids.items()]
    rows += [(code, "micro_grid", p, geom) for code, (p, geom) in (micro or {}).items()]
    frame = pd.DataFrame(rows, columns=["code", "level", "parent_code", "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=UTM)


def four_grids() -> dict[str, Polygon]:
    """The community cut into four 100 m squares, numbered W->E, N->S."""
    return {
        f"{COMMUNITY}001": square(0, 100, 100, 200),
        f"{COMMUNITY}002": square(100, 100, 200, 200),
        f"{COMMUNITY}003": square(0, 0, 100, 100),
        f"{COMMUNITY}004": square(100, 0, 200, 100),
    }


def of_type(report: CoverageReport, kind: str) -> gpd.GeoDataFrame:
    return report.defects[report.defects["type"] == kind]


# -- hand-drawn ----------------------------------------------------------------------
def test_a_clean_hierarchy_has_no_defects():
    report = check_coverage(town(four_grids()))
    assert report.ok
    assert list(report.defects.columns) == DEFECT_COLUMNS
    assert report.defects.crs == "EPSG:4326"
    assert report.coverage_ratio == pytest.approx({"street": 1, "community": 1, "grid": 1})
    assert report.metric_crs == pyproj.CRS(UTM)  # already metric: used as is


def test_a_hole_in_the_grid_layer_is_one_gap_with_its_codes():
    grids = four_grids()
    grids[f"{COMMUNITY}004"] = grids[f"{COMMUNITY}004"].difference(square(150, 0, 170, 30))
    report = check_coverage(town(grids))
    (gap,) = of_type(report, "gap").itertuples()
    assert report.counts == {**dict.fromkeys(DEFECT_TYPES, 0), "gap": 1}
    assert gap.level == "grid"
    assert gap.area_m2 == pytest.approx(600, rel=1e-6)
    assert gap.codes == [COMMUNITY, f"{COMMUNITY}004"]  # parent first, then the grid around
    assert report.coverage_ratio["grid"] == pytest.approx(1 - 600 / 40_000)
    metric = gpd.GeoSeries([gap.geometry], crs=4326).to_crs(UTM).iloc[0]
    assert metric.symmetric_difference(square(150, 0, 170, 30)).area < 1e-3


def test_small_and_thin_gaps_are_slivers_and_crumbs_are_noise():
    grids = four_grids()
    grids[f"{COMMUNITY}001"] = square(0, 100, 99.5, 200)  # 0.5 m x 100 m: thin
    grids[f"{COMMUNITY}004"] = grids[f"{COMMUNITY}004"].difference(square(150, 0, 155, 5))
    grids[f"{COMMUNITY}003"] = grids[f"{COMMUNITY}003"].difference(square(50, 0, 50.5, 0.5))
    report = check_coverage(town(grids))
    slivers = of_type(report, "sliver").sort_values("area_m2")
    assert report.counts["gap"] == 0 and len(slivers) == 2  # the 0.25 m² crumb is noise
    assert slivers["area_m2"].to_numpy() == pytest.approx([25, 50])
    assert all(d.startswith("gap sliver") for d in slivers["detail"])
    wide = check_coverage(town(grids), sliver_m2=10, sliver_width_m=0.1)
    assert of_type(wide, "gap")["area_m2"].to_numpy() == pytest.approx([50, 25])


def test_overlapping_grids_are_one_overlap_per_pair():
    grids = four_grids()
    grids[f"{COMMUNITY}001"] = square(0, 100, 110, 200)  # 10 m into 002
    report = check_coverage(town(grids))
    (overlap,) = of_type(report, "overlap").itertuples()
    assert report.counts == {**dict.fromkeys(DEFECT_TYPES, 0), "overlap": 1}
    assert overlap.codes == [f"{COMMUNITY}001", f"{COMMUNITY}002"]
    assert overlap.area_m2 == pytest.approx(1000)
    assert f"siblings in {COMMUNITY}" in overlap.detail


def test_a_duplicated_grid_overlaps_completely_and_thin_overlaps_are_slivers():
    grids = four_grids()
    grids[f"{COMMUNITY}005"] = square(0, 0, 100, 100)  # same as 003
    grids[f"{COMMUNITY}002"] = square(99.8, 100, 200, 200)  # 0.2 m x 100 m into 001
    report = check_coverage(town(grids))
    assert report.counts["overlap"] == 1 and report.counts["sliver"] == 1
    assert of_type(report, "overlap")["area_m2"].iloc[0] == pytest.approx(10_000)
    assert of_type(report, "sliver")["detail"].iloc[0].startswith("overlap sliver")


def test_invalid_geometry_is_reported_and_repaired_for_the_other_checks():
    grids = four_grids()
    # a bow-tie over grid 004's square: invalid, its repair covers two triangles only
    grids[f"{COMMUNITY}004"] = Polygon(
        [square(100, 0, 200, 100).exterior.coords[i] for i in (0, 1, 3, 2)]
    )
    report = check_coverage(town(grids))
    (bad,) = of_type(report, "invalid").itertuples()
    assert bad.codes == [f"{COMMUNITY}004"] and "Self-intersection" in bad.detail
    assert bad.area_m2 == pytest.approx(5_000)
    assert of_type(report, "gap")["area_m2"].sum() == pytest.approx(5_000)


def test_missing_and_non_polygon_geometries_are_invalid():
    grids = four_grids()
    grids[f"{COMMUNITY}003"] = Polygon()
    grids[f"{COMMUNITY}004"] = shapely.LineString([(X0, Y0), (X0 + 5, Y0)])
    report = check_coverage(town(grids))
    details = sorted(of_type(report, "invalid")["detail"])
    assert "missing or empty geometry" in details[0] and "not a polygon (LineString)" in details[1]
    assert of_type(report, "gap")["area_m2"].sum() == pytest.approx(20_000)


def test_a_grid_outside_its_community_breaks_nesting_beyond_the_tolerance():
    grids = four_grids()
    grids[f"{COMMUNITY}004"] = square(100, -5, 200, 100)  # 5 m below the community
    report = check_coverage(town(grids))
    (nest,) = of_type(report, "nesting").itertuples()
    assert nest.level == "grid" and nest.codes == [COMMUNITY, f"{COMMUNITY}004"]
    assert nest.area_m2 == pytest.approx(500)
    assert report.counts["gap"] == report.counts["overlap"] == 0
    assert check_coverage(town(grids), nesting_tolerance_m=6).counts["nesting"] == 0


def test_a_grid_slightly_outside_within_the_tolerance_is_nested():
    grids = four_grids()
    grids[f"{COMMUNITY}004"] = square(100, -0.5, 200, 100)
    assert check_coverage(town(grids)).counts["nesting"] == 0
    assert check_coverage(town(grids), nesting_tolerance_m=0.1).counts["nesting"] == 1


def test_an_unknown_parent_code_is_a_nesting_defect():
    areas = town(four_grids())
    areas.loc[areas["code"] == f"{COMMUNITY}002", "parent_code"] = "411002001099"
    (nest,) = of_type(check_coverage(areas), "nesting").itertuples()
    assert nest.codes == [f"{COMMUNITY}002"] and "411002001099" in nest.detail


def test_a_level_without_its_parent_level_is_not_compared():
    grids = town(four_grids())
    alone = grids[grids["level"] == "grid"].drop(index=grids.index[-1])  # a missing grid
    report = check_coverage(alone)
    assert report.ok and report.coverage_ratio == {}


def test_micro_grids_are_checked_against_grids():
    micro = {f"{code}001": (code, geom) for code, geom in four_grids().items()}
    micro[f"{COMMUNITY}001001"] = (f"{COMMUNITY}001", square(0, 100, 50, 200))
    micro[f"{COMMUNITY}001002"] = (f"{COMMUNITY}001", square(50, 100, 100, 190))
    report = check_coverage(town(four_grids(), micro))
    (gap,) = of_type(report, "gap").itertuples()
    assert gap.level == "micro_grid" and gap.area_m2 == pytest.approx(500)
    assert gap.codes == [
        f"{COMMUNITY}001",
        f"{COMMUNITY}001001",
        f"{COMMUNITY}001002",
        f"{COMMUNITY}002001",
    ]
    assert report.coverage_ratio["micro_grid"] == pytest.approx(1 - 500 / 40_000)


def test_only_grid_level_staff_on_the_grid_staff_it():
    # A micro-grid worker answers for their micro-grid, not for the grid above it
    # (issue 10: after a reshape 15 grids had no leader nor worker yet 0 were reported).
    micro = {
        f"{COMMUNITY}002001": (f"{COMMUNITY}002", square(100, 100, 200, 200)),
        f"{COMMUNITY}001001": (f"{COMMUNITY}001", square(0, 100, 100, 200)),
    }
    staff = pd.DataFrame(
        {
            "name": ["a", "b", "c"],
            "role": ["grid_worker", "micro_grid_worker", "grid_instructor"],
            "area_code": [f"{COMMUNITY}001", f"{COMMUNITY}002001", f"{COMMUNITY}003"],
        }
    )
    report = check_coverage(town(four_grids(), micro), staff=staff)
    unstaffed = of_type(report, "unstaffed")
    assert sorted(c for codes in unstaffed["codes"] for c in codes) == [
        f"{COMMUNITY}002",
        f"{COMMUNITY}003",
        f"{COMMUNITY}004",
    ]
    assert unstaffed["area_m2"].to_numpy() == pytest.approx([10_000] * 3)
    assert "no grid leader or grid worker" in unstaffed["detail"].iloc[0]
    # the micro-grids are reported too: each by its own worker
    assert report.unstaffed_micro_grids == [f"{COMMUNITY}001001"]
    staffing = report.staffing.set_index("code")["staffed"]
    assert staffing[f"{COMMUNITY}002001"] and not staffing[f"{COMMUNITY}002"]


def test_a_deployment_role_staffs_the_level_its_staffs_column_declares():
    staff = pd.DataFrame(
        {"name": ["a"], "role": ["resident_volunteer"], "area_code": [f"{COMMUNITY}001"]}
    )
    areas = town(four_grids())
    assert len(of_type(check_coverage(areas, staff=staff), "unstaffed")) == 4
    report = check_coverage(areas, staff=staff.assign(staffs=["grid"]))
    assert len(of_type(report, "unstaffed")) == 3


def test_incidents_outside_every_grid_are_reported_with_the_nearest_grid():
    to_lonlat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)
    xy = [(50, 50), (100, 100), (200, 0), (205, 50), (90, 230), (np.nan, np.nan)]
    lon, lat = to_lonlat.transform(
        *(np.array([X0 + x for x, _ in xy]), np.array([Y0 + y for _, y in xy]))
    )
    incidents = pd.DataFrame({"external_id": list("abcdef"), "lon": lon, "lat": lat})
    report = check_coverage(town(four_grids()), incidents=incidents)
    outside = of_type(report, "outside_incident")
    # a shared vertex (100, 100) and a corner (200, 0) are covered; NaN is skipped
    assert [d.split()[1] for d in outside["detail"]] == ["e", "d"]
    assert list(outside["codes"]) == [[f"{COMMUNITY}001"], [f"{COMMUNITY}004"]]
    assert "30.00 m away" in outside["detail"].iloc[0] and "5.00 m" in outside["detail"].iloc[1]
    assert outside.geometry.iloc[0].equals_exact(Point(lon[4], lat[4]), 1e-12)
    snapped = check_coverage(town(four_grids()), incidents=incidents, incident_tolerance_m=10)
    assert list(of_type(snapped, "outside_incident")["codes"]) == [[f"{COMMUNITY}001"]]


def test_incident_coordinates_in_gcj02_points_or_columns():
    lon, lat = np.array([113.82, 113.83, np.nan]), np.array([34.03, 34.04, np.nan])
    glon, glat = from_wgs84(lon[:2], lat[:2], "gcj02")
    frame = pd.DataFrame(
        {
            "lon": [glon[0], lon[1], np.nan],
            "lat": [glat[0], lat[1], np.nan],
            "crs": ["gcj02", None, None],
        }
    )
    got_lon, got_lat = incident_lonlat(frame)
    assert got_lon[:2] == pytest.approx(lon[:2], abs=1e-7)
    assert got_lat[:2] == pytest.approx(lat[:2], abs=1e-7) and np.isnan(got_lon[2])
    points = gpd.GeoDataFrame(
        geometry=[Point(lon[0], lat[0]), Point(lon[1], lat[1]), None], crs=4326
    ).to_crs(UTM)
    got_lon, got_lat = incident_lonlat(points)
    assert got_lon[:2] == pytest.approx(lon[:2]) and np.isnan(got_lat[2])
    with pytest.raises(ValidationError, match="lon"):
        incident_lonlat(pd.DataFrame({"x": [1.0]}))


def test_summary_table_has_one_row_per_level_and_a_total():
    grids = four_grids()
    grids[f"{COMMUNITY}001"] = square(0, 100, 110, 200)
    table = coverage_summary_table(check_coverage(town(grids)))
    assert list(table.index) == ["district", "street", "community", "grid", "total"]
    assert list(table.columns) == ["areas", "coverage_ratio", *DEFECT_TYPES]
    assert table.loc["grid", "overlap"] == 1 and table.loc["total", "areas"] == 7
    with pytest.raises(ValidationError, match="CoverageReport"):
        coverage_summary_table("report")


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda a: a.drop(columns="parent_code"), ValidationError, "parent_code"),
        (lambda a: a.assign(level="county"), ValidationError, "level"),
        (lambda a: a.assign(code="x"), ValidationError, "duplicate code 'x'"),
        (
            lambda a: gpd.GeoDataFrame(a.drop(columns="geometry"), geometry=list(a.geometry)),
            CRSError,
            "CRS",
        ),
        (lambda a: pd.DataFrame(a), ValidationError, "GeoDataFrame"),
        (lambda a: a.iloc[:0], ValidationError, "empty"),
    ],
)
def test_bad_areas_are_refused(change, error, match):
    with pytest.raises(error, match=match):
        check_coverage(change(town(four_grids())))


def test_bad_settings_are_refused_naming_the_argument():
    areas = town(four_grids())
    with pytest.raises(ValidationError, match="sliver_m2"):
        check_coverage(areas, sliver_m2=-1)
    with pytest.raises(ValidationError, match="nesting_tolerance_m"):
        check_coverage(areas, nesting_tolerance_m=float("nan"))
    with pytest.raises(ValidationError, match="noise_m2"):
        check_coverage(areas, noise_m2=200)
    with pytest.raises(ValidationError, match="area_code"):
        check_coverage(areas, staff=pd.DataFrame({"name": ["a"]}))
    with pytest.raises(CRSError, match="metric_crs"):
        check_coverage(areas, metric_crs="EPSG:4326")


def test_the_default_metric_crs_is_the_utm_zone_of_the_centre():
    lonlat = town(four_grids()).to_crs(4326)
    assert check_coverage(lonlat).metric_crs == lonlat.estimate_utm_crs()
    assert check_coverage(lonlat, metric_crs="EPSG:4547").metric_crs.to_epsg() == 4547
    with pytest.raises(CRSError, match="metric_crs"):
        check_coverage(lonlat, metric_crs="EPSG:4490")


# -- the demo district ---------------------------------------------------------------
@pytest.fixture(scope="module")
def clean() -> DemoDistrict:
    return demo_district()


@pytest.fixture(scope="module")
def flawed() -> DemoDistrict:
    return demo_district(defects=True)


def test_the_clean_demo_has_no_defects(clean):
    report = check_coverage(clean.areas(), clean.staff, clean.incidents)
    assert report.counts == dict.fromkeys(DEFECT_TYPES, 0), report.defects.drop(
        columns="geometry"
    ).to_string()
    assert report.ok
    assert report.metric_crs.to_epsg() == 32649
    for ratio in report.coverage_ratio.values():
        assert ratio == pytest.approx(1, abs=1e-9)


def test_an_incident_a_hair_outside_is_found_and_tolerance_forgives_it(clean):
    # A point 3 cm east of the district's easternmost vertex.
    outline = clean.district.geometry.iloc[0]
    x, y = max(outline.exterior.coords, key=lambda c: c[0])
    row = pd.DataFrame(
        {"external_id": ["edge-1"], "lon": [x + 0.03 / 92_000], "lat": [y], "crs": ["wgs84"]}
    )
    strict = check_coverage(clean.grids, incidents=row)
    (lost,) = of_type(strict, "outside_incident").itertuples()
    assert "0.03 m away" in lost.detail
    assert check_coverage(clean.grids, incidents=row, incident_tolerance_m=0.1).ok


def test_the_flawed_demo_shows_exactly_the_planted_defects(flawed):
    report = check_coverage(flawed.areas(), flawed.staff)
    planted = flawed.planted
    assert report.counts == {
        **dict.fromkeys(DEFECT_TYPES, 0),
        "gap": 1,
        "overlap": 1,
        "unstaffed": 3,
    }, report.defects.drop(columns="geometry").to_string()

    (gap,) = of_type(report, "gap").itertuples()
    assert gap.level == "grid"
    assert gap.area_m2 == pytest.approx(planted["gap"]["area_m2"], rel=0.01)
    assert {
        planted["gap"]["community_code"],
        planted["gap"]["grid_code"],
        planted["gap"]["neighbor_code"],
    } <= set(gap.codes)
    shared = shapely.intersection(gap.geometry, planted["gap"]["geometry"]).area
    assert shared / planted["gap"]["geometry"].area == pytest.approx(1, abs=0.01)

    (overlap,) = of_type(report, "overlap").itertuples()
    assert overlap.level == "grid"
    assert overlap.codes == sorted(
        [planted["overlap"]["grid_code"], planted["overlap"]["neighbor_code"]]
    )
    assert overlap.area_m2 == pytest.approx(planted["overlap"]["area_m2"], rel=0.01)

    unstaffed = of_type(report, "unstaffed")
    assert sorted(c for codes in unstaffed["codes"] for c in codes) == planted["unstaffed"]
    assert report.coverage_ratio["grid"] < 1 and report.coverage_ratio["micro_grid"] == (
        pytest.approx(1, abs=1e-9)
    )
