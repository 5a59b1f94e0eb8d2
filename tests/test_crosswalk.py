"""The crosswalk of a theme and the grids on hand-drawn layers with known shares.

Four 100 m grids in a 2 × 2 square (UTM 50N, so areas are exact):

    G3 | G4        y 100–200
    G1 | G2        y   0–100
   x 0–100 | 100–200
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gis.errors import GridmapError
from gis.layers import build_crosswalk, check_theme, prepare_units, suggest_snapping

UTM = 32650


def grids() -> gpd.GeoDataFrame:
    boxes = {
        "G1": (0, 0, 100, 100),
        "G2": (100, 0, 200, 100),
        "G3": (0, 100, 100, 200),
        "G4": (100, 100, 200, 200),
    }
    return gpd.GeoDataFrame(
        {"code": list(boxes), "name": [f"grid {c}" for c in boxes], "households": 100},
        geometry=[shapely.box(*b) for b in boxes.values()],
        crs=UTM,
    )


def units(**polygons) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": list(polygons), "name": [f"unit {c}" for c in polygons]},
        geometry=list(polygons.values()),
        crs=UTM,
    )


def pair(cw, unit: str, grid: str):
    rows = cw.pairs[(cw.pairs["unit_code"] == unit) & (cw.pairs["grid_code"] == grid)]
    assert len(rows) == 1, (unit, grid, cw.pairs)
    return rows.iloc[0]


def status(cw) -> dict[str, str]:
    return dict(zip(cw.grids["grid_code"], cw.grids["status"], strict=True))


def test_a_unit_exactly_on_grid_boundaries_aligns_every_grid():
    cw = build_crosswalk(
        units(A=shapely.box(0, 0, 100, 200), B=shapely.box(100, 0, 200, 200)), grids()
    )
    assert status(cw) == dict.fromkeys(["G1", "G2", "G3", "G4"], "aligned")
    assert len(cw.pairs) == 4  # touching neighbours share no area, so they are no pair
    assert pair(cw, "A", "G3")["share_of_grid"] == pytest.approx(1.0)
    assert pair(cw, "A", "G3")["share_of_unit"] == pytest.approx(0.5)
    assert cw.score["share_aligned"] == 1.0
    assert cw.score["share_boundary_within"] == pytest.approx(1.0)
    assert cw.split.empty


def test_a_unit_cutting_grids_splits_them_with_areas_and_households():
    micro = gpd.GeoDataFrame(
        {"code": ["m1", "m2"], "parent_code": ["G2", "G2"], "households": [30, 10]},
        geometry=[shapely.box(100, 0, 150, 100), shapely.box(150, 0, 200, 100)],
        crs=UTM,
    )
    cw = build_crosswalk(
        units(A=shapely.box(0, 0, 150, 200), B=shapely.box(150, 0, 200, 200)), grids(), micro
    )
    assert status(cw) == {"G1": "aligned", "G2": "split", "G3": "aligned", "G4": "split"}
    a, b = pair(cw, "A", "G2"), pair(cw, "B", "G2")
    assert a["shared_m2"] == pytest.approx(5000) and b["shared_m2"] == pytest.approx(5000)
    assert a["share_of_grid"] == pytest.approx(0.5)
    assert a["share_of_unit"] == pytest.approx(5000 / 30000)
    assert b["share_of_unit"] == pytest.approx(0.5)
    # Households through the micro-grids: 30 of G2's 40 live on A's side.
    assert a["households"] == pytest.approx(30) and a["household_share"] == pytest.approx(0.75)
    assert b["household_share"] == pytest.approx(0.25)
    g2 = cw.grids.set_index("grid_code").loc["G2"]
    assert "A: 5,000 m² (50.0%)" in g2["split_into"] and "B: 5,000 m²" in g2["split_into"]
    assert cw.score["aligned"] == 2 and cw.score["split"] == 2
    assert cw.score["share_aligned"] == pytest.approx(0.5)
    # The cut at x = 150 lies 50 m from the vertical grid edges; only 40 m of it lie within
    # 10 m of a grid boundary: its two ends and where it crosses the edge at y = 100.
    theme_length = 2 * 200 + 2 * 150 + 2 * 200 + 2 * 50 - 200  # the shared edge once
    assert cw.score["boundary_m"] == pytest.approx(theme_length)
    assert cw.score["boundary_within_m"] == pytest.approx(theme_length - 200 + 40)


def test_without_micro_grids_households_follow_the_area():
    cw = build_crosswalk(
        units(A=shapely.box(0, 0, 160, 200), B=shapely.box(160, 0, 200, 200)), grids()
    )
    assert pair(cw, "A", "G2")["households"] == pytest.approx(60)
    assert pair(cw, "B", "G4")["household_share"] == pytest.approx(0.4)


def test_a_unit_with_a_hole_leaves_that_part_of_its_grid_outside():
    holed = shapely.Polygon(
        shapely.box(0, 0, 200, 200).exterior.coords,
        [shapely.box(125, 125, 175, 175).exterior.coords],
    )
    cw = build_crosswalk(units(A=holed), grids())
    g4 = cw.grids.set_index("grid_code").loc["G4"]
    assert g4["status"] == "split" and g4["share"] == pytest.approx(0.75)
    assert g4["outside_m2"] == pytest.approx(2500)
    assert pair(cw, "A", "G4")["share_of_unit"] == pytest.approx(7500 / 37500)
    assert status(cw)["G1"] == "aligned"


def test_a_grid_no_unit_touches_is_uncovered_and_not_counted_in_the_score():
    cw = build_crosswalk(units(A=shapely.box(0, 0, 100, 100)), grids())
    assert status(cw) == {"G1": "aligned", "G2": "uncovered", "G3": "uncovered", "G4": "uncovered"}
    assert cw.score["share_aligned"] == 1.0 and cw.score["uncovered"] == 3


def test_a_sliver_under_the_tolerance_keeps_grids_aligned():
    cw = build_crosswalk(
        units(A=shapely.box(0, 0, 100.5, 200), B=shapely.box(100.5, 0, 200, 200)), grids()
    )
    assert set(status(cw).values()) == {"aligned"}
    assert pair(cw, "A", "G2")["shared_m2"] == pytest.approx(50)  # the sliver, still a pair
    assert pair(cw, "A", "G2")["grid_status"] == "aligned"
    assert cw.score["share_boundary_within"] == pytest.approx(1.0)
    strict = build_crosswalk(
        units(A=shapely.box(0, 0, 100.5, 200), B=shapely.box(100.5, 0, 200, 200)),
        grids(),
        tolerance_m=0.1,
    )
    assert strict.score["share_boundary_within"] < 1.0
    # A stricter threshold than 99.5 % splits the sliver's grids.
    assert set(status(build_crosswalk(strict_units(), grids(), threshold=0.999)).values()) == {
        "aligned",
        "split",
    }


def strict_units() -> gpd.GeoDataFrame:
    return units(A=shapely.box(0, 0, 100.5, 200), B=shapely.box(100.5, 0, 200, 200))


def test_snapping_gives_each_grid_to_the_unit_holding_most_of_it():
    theme = units(A=shapely.box(0, 0, 160, 200), B=shapely.box(160, 0, 200, 200))
    cw = build_crosswalk(theme, grids())
    suggestion = suggest_snapping(cw, theme, grids()).set_index("code")
    assert suggestion.loc["A", "grids"] == 4 and suggestion.loc["B", "grids"] == 0
    assert suggestion.loc["A", "area_gained_m2"] == pytest.approx(8000)
    assert suggestion.loc["B", "area_lost_m2"] == pytest.approx(8000)
    assert suggestion.loc["A", "households_gained"] == pytest.approx(80)
    assert suggestion.loc["B", "households_lost"] == pytest.approx(80)
    assert suggestion.loc["A", "suggested_area_m2"] == pytest.approx(40000)
    assert suggestion.loc["A", "area_m2"] == pytest.approx(32000)
    assert suggestion.crs.to_epsg() == 4326
    assert suggestion.loc["B", "geometry"] is None


def test_prepare_units_lists_every_problem_and_merges_parts_when_asked():
    layer = gpd.GeoDataFrame(
        {"dist": ["1", "1", None, "2"], "label": ["a", "a", "x", "b"]},
        geometry=[
            shapely.box(113.80, 34.0, 113.81, 34.01),
            shapely.box(113.82, 34.0, 113.83, 34.01),
            shapely.box(113.84, 34.0, 113.85, 34.01),
            shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]),  # a bow tie
        ],
        crs=4326,
    )
    refused = prepare_units(layer, code_field="dist", name_field="label")
    reasons = [(p["row"], p["reason"]) for p in refused.problems]
    assert any(row == 1 and "duplicate dist '1'" in r for row, r in reasons)
    assert any(row == 3 and "missing code" in r for row, r in reasons)
    assert any(row == 4 and "invalid geometry" in r for row, r in reasons)
    merged = prepare_units(layer.iloc[[0, 1]], code_field="dist", merge_parts=True)
    assert merged.ok and len(merged.units) == 1
    assert len(shapely.get_parts(merged.units.geometry.iloc[0])) == 2
    # Two squares of 0.01° × 0.01° at 34° N: 923 m × 1,109 m each.
    assert merged.units["area_m2"].iloc[0] == pytest.approx(2 * 923 * 1109, rel=0.01)


def test_prepare_units_refuses_codes_the_theme_already_has():
    layer = gpd.GeoDataFrame(
        {"code": ["7"]}, geometry=[shapely.box(113.8, 34, 113.81, 34.01)], crs=4326
    )
    refused = prepare_units(layer, code_field="code", existing_codes={"7"})
    assert "already exists" in refused.problems[0]["reason"]


@pytest.mark.parametrize("name", ["Police", "", "a-b", "x" * 33, "1st"])
def test_theme_names_are_lower_case_words(name):
    with pytest.raises(GridmapError, match="not a valid name"):
        check_theme(name)
