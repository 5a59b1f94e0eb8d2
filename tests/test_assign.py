"""gis.assign: point-in-polygon assignment with the PostGIS boundary rule.

Hand-drawn grids in a metric CRS (UTM 50N, coordinates in metres from a local
origin) have answers known by construction; randomized tests compare the
engine with a brute-force reference on the Chicago police beats, including
points exactly on their vertices and edges.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

import gis.assign.index as assign_module
from gis.assign import STATUSES, GridIndex, assign_points
from gis.errors import CRSError, ValidationError
from tests.edge_points import assert_same, edge_points, rounded_onto_a_slanted_edge

UTM = "EPSG:32650"
X0, Y0 = 500_000.0, 3_760_000.0  # local origin of the hand-drawn grids


def at(x: float, y: float) -> tuple[float, float]:
    return X0 + x, Y0 + y


def square(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return box(*at(x0, y0), *at(x1, y1))


@pytest.fixture(scope="module")
def town() -> gpd.GeoDataFrame:
    """Hand-drawn grids (metres from the local origin).

    ::

        y=20 +----+----+        +--------------+
             | C  | D  |        | E   +----+   |   G = two squares:
        y=10 +----+----+        |     | F  |   |   (60..65, 0..5) and (70..75, 0..5)
             | A  | B  |        |     +----+   |   F is an island in E's hole
        y=0  +----+----+        +--------------+   (hole 35..45 x 5..15, F 38..42 x 8..12)
             0    10   20       30            50
    """
    hole = [at(35, 5), at(45, 5), at(45, 15), at(35, 15)]
    shell = [at(30, 0), at(50, 0), at(50, 20), at(30, 20)]
    grids = {
        "A": square(0, 0, 10, 10),
        "B": square(10, 0, 20, 10),
        "C": square(0, 10, 10, 20),
        "D": square(10, 10, 20, 20),
        "E": Polygon(shell, [hole]),
        "F": square(38, 8, 42, 12),
        "G": MultiPolygon([square(60, 0, 65, 5), square(70, 0, 75, 5)]),
    }
    # Rows deliberately not in code order.
    codes = ["G", "D", "B", "A", "F", "C", "E"]
    return gpd.GeoDataFrame({"code": codes}, geometry=[grids[c] for c in codes], crs=UTM)


@pytest.fixture(scope="module")
def town_index(town: gpd.GeoDataFrame) -> GridIndex:
    return GridIndex(town)


def assign_local(index: GridIndex, points: list[tuple[float, float]], **kw) -> pd.DataFrame:
    x, y = np.array([at(*p) for p in points]).T
    return index.assign_xy(x, y, **kw)


# -- known answers -------------------------------------------------------------------
@pytest.mark.parametrize(
    "point, code, status",
    [
        ((5, 5), "A", "inside"),
        ((15, 5), "B", "inside"),
        ((10, 5), "A", "boundary"),  # shared edge A|B: the smaller code
        ((15, 10), "B", "boundary"),  # shared edge B|D
        ((10, 10), "A", "boundary"),  # vertex shared by A, B, C, D
        ((10, 20), "C", "boundary"),  # vertex shared by C and D on the outer edge
        ((0, 0), "A", "boundary"),  # outer corner
        ((20, 20), "D", "boundary"),
        ((31, 1), "E", "inside"),
        ((36, 10), None, "outside"),  # in E's hole
        ((35, 10), "E", "boundary"),  # on the hole's edge
        ((40, 10), "F", "inside"),  # island in the hole
        ((38, 10), "F", "boundary"),
        ((72, 2), "G", "inside"),  # second part of a MultiPolygon
        ((67, 2), None, "outside"),  # between its parts
        ((100, 100), None, "outside"),
    ],
)
def test_hand_drawn_answers(town_index, point, code, status):
    row = assign_local(town_index, [point]).iloc[0]
    assert (row.code, row.status) == (code, status)
    assert row.distance_m == 0.0 if status != "outside" else np.isnan(row.distance_m)


def test_snapping_distance_in_metres_and_inclusive_tolerance(town_index):
    # (36, 10) is 1 m from E's hole edge and 2 m from the island F.
    result = assign_local(town_index, [(36, 10), (36, 10), (36, 10), (20, 25)], tolerance=1.0)
    assert result.code.tolist() == ["E", "E", "E", None]
    assert result.status.tolist() == ["snapped"] * 3 + ["outside"]
    assert result.distance_m.iloc[0] == pytest.approx(1.0, abs=1e-9)
    assert np.isnan(result.distance_m.iloc[3])  # 5 m away: beyond 1 m
    assert assign_local(town_index, [(20, 25)], tolerance=5.0).status.iloc[0] == "snapped"


def test_snapping_tie_goes_to_the_smallest_code(town_index):
    # (25, 5) is 5 m from B (x = 20) and 5 m from E (x = 30).
    row = assign_local(town_index, [(25, 5)], tolerance=6.0).iloc[0]
    assert (row.code, row.status, row.distance_m) == ("B", "snapped", pytest.approx(5.0))
    # Below the corner shared by A and B: equidistant, A wins.
    row = assign_local(town_index, [(10, -3)], tolerance=3.0).iloc[0]
    assert (row.code, row.status, row.distance_m) == ("A", "snapped", pytest.approx(3.0))


def test_zero_tolerance_never_snaps(town_index):
    assert assign_local(town_index, [(20.001, 5)]).status.iloc[0] == "outside"


def test_codes_compare_as_strings_not_numbers():
    grids = gpd.GeoDataFrame(
        {"code": ["9", "10"]}, geometry=[square(0, 0, 10, 10), square(10, 0, 20, 10)], crs=UTM
    )
    row = assign_local(GridIndex(grids), [(10, 5)]).iloc[0]
    assert (row.code, row.status) == ("10", "boundary")  # "10" < "9"


def test_overlapping_grids_take_the_smallest_code_boundary_of_the_chosen_grid():
    grids = gpd.GeoDataFrame(
        {"code": ["b", "a", "c"]},
        geometry=[square(0, 0, 10, 10), square(5, 5, 15, 15), square(0, 0, 20, 20)],
        crs=UTM,
    )
    result = assign_local(GridIndex(grids), [(7, 7), (2, 2), (15, 12), (10, 7), (17, 17)])
    assert result.code.tolist() == ["a", "b", "a", "a", "c"]
    # (15, 12) is on a's edge inside c; (10, 7) on b's edge inside a: the chosen grid decides.
    assert result.status.tolist() == ["inside", "inside", "boundary", "inside", "inside"]


def test_missing_empty_and_nan_points_are_outside(town_index):
    points = gpd.GeoSeries([Point(at(5, 5)), None, Point(), Point(np.nan, Y0)], crs=UTM)
    result = town_index.assign(points)
    assert result.code.tolist() == ["A", None, None, None]
    assert result.status.tolist() == ["inside", "outside", "outside", "outside"]
    xy = town_index.assign_xy([np.nan, np.inf, X0 + 5], [Y0, Y0, np.nan], tolerance=100.0)
    assert xy.status.tolist() == ["outside"] * 3


def test_result_is_aligned_with_the_input(town_index):
    points = gpd.GeoDataFrame(
        {"id": [1, 2]}, geometry=[Point(at(15, 15)), Point(at(5, 5))], crs=UTM, index=["p", "q"]
    )
    result = town_index.assign(points)
    assert result.index.tolist() == ["p", "q"]
    assert result.columns.tolist() == ["code", "status", "distance_m"]
    assert result.code.tolist() == ["D", "A"]
    assert result.dtypes.to_dict() == {"code": object, "status": object, "distance_m": float}
    assert set(result.status) <= set(STATUSES)


def test_xy_pair_and_one_shot_forms_agree(town, town_index):
    x, y = np.array([at(5, 5), at(10, 5), at(36, 10)]).T
    expected = town_index.assign_xy(x, y, tolerance=2.0)
    pd.testing.assert_frame_equal(town_index.assign((x, y), tolerance=2.0), expected)
    points = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=UTM)
    pd.testing.assert_frame_equal(assign_points(points, town, tolerance=2.0), expected)
    assert town_index.assign_xy(x, y, crs=UTM).code.tolist() == ["A", "A", None]


def test_empty_input_gives_an_empty_frame(town_index):
    result = town_index.assign(gpd.GeoSeries([], crs=UTM))
    assert len(result) == 0 and result.columns.tolist() == ["code", "status", "distance_m"]


def test_index_survives_pickling(town_index):
    clone = pickle.loads(pickle.dumps(town_index))
    points = [(10, 5), (36, 10), (72, 2)]
    pd.testing.assert_frame_equal(
        assign_local(clone, points, tolerance=2.0), assign_local(town_index, points, tolerance=2.0)
    )


# -- CRS -----------------------------------------------------------------------------
def test_metric_crs_is_the_grids_crs_when_projected_in_metres(town_index):
    assert town_index.metric_epsg == 32650


def test_metric_crs_defaults_to_the_utm_zone_of_geographic_grids(town):
    index = GridIndex(town.to_crs(4326))
    assert index.metric_epsg == 32650
    assert GridIndex(town.to_crs(4326), metric_crs=32649).metric_epsg == 32649


def test_snapped_distance_is_measured_in_the_metric_crs(town):
    index = GridIndex(town.to_crs(4326))
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(*at(36, 10))
    row = index.assign_xy([lon], [lat], tolerance=2.0).iloc[0]
    assert (row.code, row.status) == ("E", "snapped")
    # Projecting E's vertices to 4326 and back moves them by far less than a micrometre.
    assert row.distance_m == pytest.approx(1.0, abs=1e-6)


def test_points_in_another_crs_are_an_error(town_index):
    points = gpd.GeoSeries([Point(116.0, 34.0)], crs=4326)
    with pytest.raises(CRSError, match="points are in EPSG:4326 but the grids are in EPSG:32650"):
        town_index.assign(points)
    with pytest.raises(CRSError, match="points has no CRS"):
        town_index.assign(gpd.GeoSeries([Point(at(5, 5))]))
    with pytest.raises(CRSError, match="crs are in EPSG:4326"):
        town_index.assign_xy([116.0], [34.0], crs="EPSG:4326")


def test_crs84_and_epsg4326_are_the_same(town):
    index = GridIndex(town.to_crs(4326))
    points = gpd.GeoSeries([Point(at(5, 5))], crs=UTM).to_crs("OGC:CRS84")
    assert index.assign(points).code.tolist() == ["A"]


def test_grids_without_crs_or_with_a_non_metric_metric_crs_are_errors(town):
    with pytest.raises(CRSError, match="grids has no CRS"):
        GridIndex(gpd.GeoDataFrame({"code": town.code}, geometry=list(town.geometry)))
    with pytest.raises(CRSError, match="metric_crs must be a projected CRS in metres"):
        GridIndex(town, metric_crs=4326)
    with pytest.raises(CRSError, match="metric_crs='EPSG:0' is not a CRS"):
        GridIndex(town, metric_crs="EPSG:0")


# -- validation ----------------------------------------------------------------------
def test_empty_grids_are_an_error(town):
    with pytest.raises(ValidationError, match="grids is empty"):
        GridIndex(town.iloc[:0])


def test_duplicate_codes_are_an_error_naming_the_rows(town):
    grids = town.copy()
    grids.loc[grids.code == "D", "code"] = "A"
    with pytest.raises(ValidationError, match="bad codes in column 'code'") as info:
        GridIndex(grids)
    assert sorted(p["row"] for p in info.value.problems) == sorted(grids.index[grids.code == "A"])
    assert all(p["reason"] == "duplicate code 'A'" for p in info.value.problems)


@pytest.mark.parametrize("bad_code", [None, 7, ""])
def test_codes_must_be_non_empty_strings(town, bad_code):
    grids = town.astype({"code": object})
    grids.loc[grids.index[0], "code"] = bad_code
    with pytest.raises(ValidationError) as info:
        GridIndex(grids)
    assert "code must be a non-empty string" in info.value.problems[0]["reason"]


def test_bad_grid_geometries_are_errors_with_reasons(town):
    grids = town.copy()
    bowtie = Polygon([at(0, 0), at(10, 10), at(10, 0), at(0, 10)])
    grids.loc[grids.index[:3], "geometry"] = [Point(at(1, 1)), bowtie, Polygon()]
    with pytest.raises(ValidationError) as info:
        GridIndex(grids)
    reasons = [p["reason"] for p in info.value.problems]
    assert reasons[0] == "geometry must be a Polygon or MultiPolygon, got Point"
    assert reasons[1] == "geometry is empty"
    assert reasons[2].startswith("invalid geometry (Self-intersection")


def test_argument_errors_name_the_argument(town, town_index):
    with pytest.raises(ValidationError, match="code='name' is not a column of grids"):
        GridIndex(town, code="name")
    with pytest.raises(ValidationError, match="grids must be a GeoDataFrame"):
        GridIndex(town.geometry)
    with pytest.raises(ValidationError, match="tolerance must be a finite number of metres"):
        town_index.assign_xy([X0], [Y0], tolerance=-1.0)
    with pytest.raises(ValidationError, match="tolerance must be a number of metres"):
        town_index.assign_xy([X0], [Y0], tolerance="5")
    with pytest.raises(ValidationError, match="same length"):
        town_index.assign_xy([X0, X0], [Y0])
    for shapes in ([square(0, 0, 1, 1)], [Point(), LineString([at(0, 0), at(1, 1)])]):
        with pytest.raises(ValidationError, match="points must be Point geometries"):
            town_index.assign(gpd.GeoSeries(shapes, crs=UTM))
    with pytest.raises(ValidationError, match="points must be a GeoSeries or GeoDataFrame"):
        town_index.assign("POINT (0 0)")
    with pytest.raises(ValidationError, match="cell_size must be a number > 0"):
        GridIndex(town, cell_size=0)
    with pytest.raises(ValidationError, match="cell_size=0.001 gives .* cells"):
        GridIndex(town, cell_size=0.001)
    with pytest.raises(ValidationError, match="max_cells must be an integer 1..268,435,456"):
        GridIndex(town, max_cells=0.5)


# -- agreement with a brute-force reference --------------------------------------------
def reference(
    grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, tolerance: float, metric_crs: pyproj.CRS
) -> pd.DataFrame:
    """The semantics spelled out point by point with plain shapely calls."""
    codes = grids.code.to_numpy()
    geoms = grids.geometry.to_numpy()
    points = shapely.points(x, y)
    code = np.full(len(x), None, dtype=object)
    status = np.full(len(x), "outside", dtype=object)
    distance = np.full(len(x), np.nan)
    point, grid = shapely.STRtree(geoms).query(points)  # bounding boxes only
    covering: dict[int, list[int]] = {}
    for p, g in zip(point, grid, strict=True):
        if shapely.covers(geoms[g], points[p]):
            covering.setdefault(p, []).append(g)
    for p, found in covering.items():
        chosen = min(found, key=lambda g: codes[g])
        code[p] = codes[chosen]
        status[p] = "inside" if shapely.contains(geoms[chosen], points[p]) else "boundary"
        distance[p] = 0.0
    loose = np.array(
        [p for p in range(len(x)) if p not in covering and np.isfinite(x[p])], dtype=int
    )
    if tolerance > 0 and len(loose):
        metric = grids.to_crs(metric_crs).geometry.to_numpy()
        mx, my = pyproj.Transformer.from_crs(grids.crs, metric_crs, always_xy=True).transform(
            x[loose], y[loose]
        )
        mpoints = shapely.points(mx, my)
        near, grid = shapely.STRtree(metric).query(mpoints, predicate="dwithin", distance=tolerance)
        for p in np.unique(near):
            found = grid[near == p]
            d = shapely.distance(metric[found], mpoints[p])
            best = min(zip(d, codes[found], strict=True))
            code[loose[p]], status[loose[p]], distance[loose[p]] = best[1], "snapped", best[0]
    return pd.DataFrame(
        {
            "code": pd.Series(code, dtype=object),
            "status": pd.Series(status, dtype=object),
            "distance_m": distance,
        }
    )


@pytest.fixture(scope="module")
def beats(chicago_dir: Path) -> gpd.GeoDataFrame:
    beats = gpd.read_file(chicago_dir / "chicago_police_beats_277.geojson")
    # beat_num has duplicates: code by row order, reversed so ranks differ from rows.
    beats["code"] = [f"{len(beats) - i:04d}" for i in range(len(beats))]
    return beats[["code", "geometry"]]


@pytest.fixture(scope="module")
def beats_index(beats: gpd.GeoDataFrame) -> GridIndex:
    return GridIndex(beats)


@pytest.mark.parametrize("tuning", [{}, {"cell_size": 0.004}, {"max_cells": 4096}])
def test_beats_agree_with_brute_force_on_random_and_edge_points(beats, tuning):
    rng = np.random.default_rng(7)
    xmin, ymin, xmax, ymax = beats.total_bounds
    random = np.column_stack([rng.uniform(xmin, xmax, 3000), rng.uniform(ymin, ymax, 3000)])
    points = np.vstack([random, edge_points(beats, rng, 400)])
    index = GridIndex(beats, **tuning)
    assert index.metric_epsg == 32616
    result = index.assign_xy(points[:, 0], points[:, 1])
    assert_same(result, reference(beats, points[:, 0], points[:, 1], 0.0, index.metric_crs))
    assert {"inside", "boundary", "outside"} <= set(result.status)


def test_concurrent_queries_agree_with_serial_ones(beats):
    rng = np.random.default_rng(9)
    xmin, ymin, xmax, ymax = beats.total_bounds
    x, y = rng.uniform(xmin, xmax, (4, 2000)), rng.uniform(ymin, ymax, (4, 2000))
    index = GridIndex(beats)  # fresh: the threads race for the lazy snapping index too
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda i: index.assign_xy(x[i], y[i], tolerance=50.0), range(4)))
    for i, result in enumerate(parallel):
        pd.testing.assert_frame_equal(result, index.assign_xy(x[i], y[i], tolerance=50.0))


def test_chunks_give_the_same_answer(beats, beats_index, monkeypatch):
    rng = np.random.default_rng(10)
    xmin, ymin, xmax, ymax = beats.total_bounds
    x, y = rng.uniform(xmin, xmax, 5000), rng.uniform(ymin, ymax, 5000)
    whole = beats_index.assign_xy(x, y, tolerance=30.0)
    monkeypatch.setattr(assign_module, "_CHUNK", 777)  # 10^7-point inputs go in chunks
    pd.testing.assert_frame_equal(beats_index.assign_xy(x, y, tolerance=30.0), whole)


def test_beats_agree_with_brute_force_when_snapping(beats, beats_index):
    rng = np.random.default_rng(8)
    # Vertices of the beats pushed up to ~60 m away: some inside, some out, some snapped.
    vertices = shapely.get_coordinates(beats.geometry.to_numpy())
    points = vertices[rng.choice(len(vertices), 1500)] + rng.normal(0, 0.0004, (1500, 2))
    index = beats_index
    result = index.assign_xy(points[:, 0], points[:, 1], tolerance=40.0)
    assert_same(result, reference(beats, points[:, 0], points[:, 1], 40.0, index.metric_crs))
    assert (result.status == "snapped").sum() > 50


def test_holes_of_the_beats(beats, beats_index):
    """The beats' two holes hold enclave beats; without the enclaves they are gaps."""
    parts, owner = shapely.get_parts(beats.geometry.to_numpy(), return_index=True)
    rings, part = shapely.get_rings(parts, return_index=True)
    exterior = np.concatenate(([True], part[1:] != part[:-1]))  # each part's first ring
    holes = shapely.polygons(rings[~exterior])
    holed = beats.code.to_numpy()[owner[part[~exterior]]]
    assert len(holes) == 2
    probe = shapely.point_on_surface(holes)
    x, y = shapely.get_x(probe), shapely.get_y(probe)
    index = beats_index
    enclaves = index.assign_xy(x, y)
    assert (enclaves.status == "inside").all() and (enclaves.code != holed).all()
    # The hole rings' vertices lie on the holed beat and on its enclave.
    ring_xy = shapely.get_coordinates(rings[~exterior])
    on_ring = index.assign_xy(ring_xy[:, 0], ring_xy[:, 1])
    assert (on_ring.status == "boundary").all()
    assert_same(on_ring, reference(beats, ring_xy[:, 0], ring_xy[:, 1], 0.0, index.metric_crs))

    gaps = beats[~beats.code.isin(enclaves.code)]
    index = GridIndex(gaps)
    assert index.assign_xy(x, y).status.tolist() == ["outside", "outside"]
    snapped = index.assign_xy(x, y, tolerance=600.0)
    assert snapped.code.tolist() == holed.tolist()
    assert snapped.status.tolist() == ["snapped", "snapped"]
    assert_same(snapped, reference(gaps, x, y, 600.0, index.metric_crs))


def test_points_a_hair_off_an_edge_get_the_exact_answer(beats, beats_index):
    points, signs = rounded_onto_a_slanted_edge(beats, np.random.default_rng(3))
    assert len(points) >= 5 and len(set(signs)) == 2
    index = beats_index
    result = index.assign_xy(points[:, 0], points[:, 1])
    # Not on the edge, so on no boundary; the side decides (PostGIS says "boundary").
    assert (result.status != "boundary").all()
    assert_same(result, reference(beats, points[:, 0], points[:, 1], 0.0, index.metric_crs))
    # One grid (or none) on each side of the edge, a different one on each side.
    sides = [set(result.code[signs == side]) for side in (-1, 1)]
    assert len(sides[0]) == len(sides[1]) == 1 and sides[0] != sides[1]


def random_boxes(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    """Overlapping random rectangles on a coarse lattice (many shared edges and corners)."""
    lo = rng.integers(0, 40, (n, 2)) * 25.0
    size = rng.integers(1, 8, (n, 2)) * 25.0
    geoms = [square(x, y, x + w, y + h) for (x, y), (w, h) in zip(lo, size, strict=True)]
    return gpd.GeoDataFrame(
        {"code": [f"g{i}" for i in rng.permutation(n)]}, geometry=geoms, crs=UTM
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_overlapping_grids_agree_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    grids = random_boxes(rng, 60)
    lattice = rng.integers(0, 48 * 4, (2000, 2)) * 6.25  # many points on the edges
    jitter = rng.uniform(0, 1200, (2000, 2))
    points = np.vstack([lattice, jitter]) + [X0, Y0]
    index = GridIndex(grids)
    for tolerance in (0.0, 10.0):
        result = index.assign_xy(points[:, 0], points[:, 1], tolerance=tolerance)
        assert_same(result, reference(grids, points[:, 0], points[:, 1], tolerance, UTM))


def test_snapping_with_no_grid_in_reach_leaves_points_outside():
    # Regression: an empty tree query used to raise IndexError.
    grids = gpd.GeoDataFrame({"code": ["a"]}, geometry=[shapely.box(0, 0, 0.001, 0.001)], crs=4326)
    result = GridIndex(grids).assign_xy([1.0], [1.0], tolerance=10)
    assert list(result["status"]) == ["outside"]


def test_assign_arrays_matches_assign_xy():
    grids = gpd.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4326
    )
    index = GridIndex(grids)
    x, y = np.array([0.5, 1.0, 1.5, 3.0]), np.array([0.5, 0.5, 0.5, 0.5])
    codes, status, distance = index.assign_arrays(x, y)
    frame = index.assign_xy(x, y)
    assert list(codes) == list(frame["code"]) == ["a", "a", "b", None]
    assert list(status) == list(frame["status"])
    np.testing.assert_array_equal(distance, frame["distance_m"].to_numpy())
