"""The crosswalk's own geometry against GEOS: shared areas clipped in NumPy, and the
theme boundary lying within a tolerance of the grid boundaries measured exactly.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.layers import build_crosswalk
from gis.layers.clip import clipped_areas, convex_cells, polygon_rings, segments_meet_cells
from gis.layers.crosswalk import _boundary_within, shared_areas

UTM = 32650
#: Coordinates of a UTM zone's size: areas lose digits here unless measured locally.
OFFSET = np.array([512_345.6, 3_765_432.1])


def _moved(geoms: np.ndarray, scale: float = 37.0) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: xy * scale + OFFSET)


def _random_cells(rng, n: int) -> np.ndarray:
    cells = [
        shapely.convex_hull(shapely.multipoints(rng.uniform(0, 10, (rng.integers(3, 9), 2))))
        for _ in range(n)
    ]
    return np.array(cells, dtype=object)


def _units_with_holes_and_parts(rng) -> np.ndarray:
    units = []
    for _ in range(20):
        disc = shapely.Point(rng.uniform(0, 10, 2)).buffer(rng.uniform(1, 6), quad_segs=3)
        hole = shapely.Point(rng.uniform(0, 10, 2)).buffer(rng.uniform(0.5, 2), quad_segs=2)
        units.append(disc.difference(hole))
    units.append(shapely.MultiPolygon([shapely.box(0, 0, 3, 3), shapely.box(4, 4, 9, 9)]))
    units.append(shapely.box(0, 0, 5, 5))  # edges on the cells' edges
    return np.array(units, dtype=object)


def test_clipped_areas_equal_the_geos_intersections():
    rng = np.random.default_rng(13)
    cells = _moved(np.r_[_random_cells(rng, 60), shapely.box(0, 0, 5, 5), shapely.box(2, 2, 3, 3)])
    units = _moved(_units_with_holes_and_parts(rng))
    convex = convex_cells(cells)
    assert convex.convex.all()
    cell_i, unit_i = (a.ravel() for a in np.meshgrid(np.arange(len(cells)), np.arange(len(units))))
    ours = clipped_areas(convex, cell_i, polygon_rings(units), unit_i)
    # GEOS measured in local coordinates, where it keeps every digit.
    local = shapely.area(
        shapely.intersection(
            shapely.transform(cells[cell_i], lambda xy: xy - OFFSET),
            shapely.transform(units[unit_i], lambda xy: xy - OFFSET),
        )
    )
    assert np.abs(ours - local).max() / shapely.area(cells).min() < 1e-9
    assert (ours > 0).sum() > 100  # the test compares real pieces, not just empty pairs


def test_cells_that_are_not_convex_or_have_holes_are_left_to_geos():
    cells = np.array(
        [
            shapely.Polygon([(0, 0), (4, 0), (4, 4), (2, 1), (0, 4)]),  # a notch
            shapely.box(0, 0, 4, 4).difference(shapely.box(1, 1, 2, 2)),  # a hole
            shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]),
            shapely.Polygon([(0, 0), (2, 0), (4, 0), (4, 4), (0, 4)]),  # a straight vertex
            shapely.Polygon([(0, 0), (0, 4), (4, 4), (4, 0)]),  # clockwise
        ],
        dtype=object,
    )
    assert convex_cells(cells).convex.tolist() == [False, False, False, True, True]


def test_shared_areas_of_a_mixed_layer_match_geos():
    """Convex and non-convex grids, a unit with a hole and a unit with too many vertices."""
    rng = np.random.default_rng(7)
    grids = np.r_[
        _random_cells(rng, 30),
        shapely.Polygon([(0, 0), (6, 0), (6, 6), (3, 2), (0, 6)]),
        shapely.box(0, 0, 10, 10).difference(shapely.box(4, 4, 6, 6)),
    ]
    units = np.r_[
        _units_with_holes_and_parts(rng)[:6],
        shapely.Point(5, 5).buffer(4, quad_segs=200),  # > CLIPPED_VERTICES: GEOS
    ]
    grid_frame = gpd.GeoDataFrame(
        {"code": [f"G{i:02d}" for i in range(len(grids))]}, geometry=_moved(grids), crs=UTM
    )
    unit_frame = gpd.GeoDataFrame(
        {"code": [f"U{i}" for i in range(len(units))]}, geometry=_moved(units), crs=UTM
    )
    pairs = shared_areas(unit_frame, grid_frame).set_index(["grid_code", "unit_code"])
    pieces = gpd.overlay(
        grid_frame.rename(columns={"code": "grid_code"}),
        unit_frame.rename(columns={"code": "unit_code"}),
        how="intersection",
    )
    expected = pieces.assign(m2=pieces.area).groupby(["grid_code", "unit_code"])["m2"].sum()
    expected = expected[expected > 1e-6]
    assert sorted(pairs.index) == sorted(expected.index)
    grid_area = grid_frame.set_index("code").area
    share = expected / grid_area.reindex(expected.index.get_level_values(0)).to_numpy()
    assert pairs.loc[expected.index, "share_of_grid"].to_numpy() == pytest.approx(
        share.to_numpy(), abs=1e-9
    )


def test_boundary_within_the_tolerance_is_measured_exactly():
    """A 100 m square unit over a grid shifted 5 m east. With a 4 m tolerance the top and
    bottom edges follow the grid from 1 m east of the unit's corners (99 m each), and the
    east edge for 4 m at each end (near the grid's top and bottom); the west edge, 5 m
    from the grid, not at all.
    """
    unit = np.array([shapely.box(0, 0, 100, 100)], dtype=object)
    grid = np.array([shapely.box(5, 0, 105, 100)], dtype=object)
    assert _boundary_within(unit, grid, 4.0) == pytest.approx((400.0, 2 * 99 + 2 * 4))
    assert _boundary_within(unit, grid, 5.0) == pytest.approx((400.0, 400.0))
    assert _boundary_within(unit, grid, 0.0) == pytest.approx((400.0, 2 * 95))


def test_boundary_within_matches_a_fine_buffer_of_the_grid_boundaries():
    rng = np.random.default_rng(5)
    grids = np.array(
        [
            shapely.box(0, 0, 100, 100).difference(shapely.box(30, 30, 60, 60)),
            shapely.MultiPolygon([shapely.box(100, 0, 150, 100), shapely.box(160, 0, 200, 100)]),
            shapely.Polygon([(0, 100), (200, 100), (200, 200), (100, 150), (0, 200)]),
        ],
        dtype=object,
    )
    units = np.array(
        [shapely.Point(rng.uniform(0, 200, 2)).buffer(rng.uniform(20, 80), 3) for _ in range(6)],
        dtype=object,
    )
    theme = shapely.union_all(shapely.boundary(units))
    lines = shapely.union_all(shapely.boundary(grids))
    for tolerance in (3.0, 12.0):
        length, within = _boundary_within(units, grids, tolerance)
        band = shapely.buffer(lines, tolerance, quad_segs=64)
        assert length == pytest.approx(shapely.length(theme))
        # The fine buffer's round ends lie just inside the true bands.
        assert within == pytest.approx(shapely.length(shapely.intersection(theme, band)), rel=1e-4)


def test_the_crosswalk_of_a_lattice_in_degrees_equals_the_overlay():
    """Cells in WGS84 projected like ``to_crs`` does, each shared vertex once."""
    xs, ys = np.linspace(113.80, 113.83, 13), np.linspace(34.00, 34.03, 13)
    cells = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(12) for j in range(12)]
    grids = gpd.GeoDataFrame({"code": [f"C{k:03d}" for k in range(144)]}, geometry=cells, crs=4326)
    units = gpd.GeoDataFrame(
        {"code": ["A", "B"]},
        geometry=[
            shapely.Polygon([(113.79, 33.99), (113.84, 33.99), (113.79, 34.04)]),
            shapely.Polygon([(113.84, 33.99), (113.84, 34.04), (113.79, 34.04)]),
        ],
        crs=4326,
    )
    cw = build_crosswalk(units, grids)
    metric = grids.estimate_utm_crs()
    pieces = gpd.overlay(
        grids.to_crs(metric).rename(columns={"code": "grid_code"}),
        units.to_crs(metric).rename(columns={"code": "unit_code"}),
        how="intersection",
    )
    expected = pieces.assign(m2=pieces.area).set_index(["grid_code", "unit_code"])["m2"]
    ours = cw.pairs.set_index(["grid_code", "unit_code"])["shared_m2"]
    assert len(ours) == len(expected[expected > 1e-6])
    assert ours.loc[expected.index].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-9)
    assert (cw.grids["status"] == "split").sum() == 12  # the diagonal cuts a cell per column


def test_segments_meet_cells_edges_and_corners_included():
    cells = convex_cells(np.array([shapely.box(0, 0, 10, 10)], dtype=object))
    segments = np.array(
        [
            (2, 2, 3, 3),  # inside
            (-5, 5, 15, 5),  # across
            (-5, 10, 15, 10),  # along the top edge
            (-5, 15, 15, 15),  # parallel, outside
            (-5, -5, 0, 0),  # ends at a corner
            (-5, 4, 4, 15),  # passes near the corner (0, 10) but outside it
            (11, 0, 11, 10),  # beside the east edge
        ],
        dtype=float,
    )
    meets = segments_meet_cells(cells, np.zeros(len(segments), dtype=int), *segments.T)
    assert meets.tolist() == [True, True, True, False, True, False, False]
