"""Polygons projected as arrays of vertices, and the box join, against GEOS and PROJ:
the crosswalk reads areas, boxes and geometries from them instead of ``to_crs``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from gis.layers.clip import convex_cells, convex_cells_of
from gis.layers.vertices import MetricPolygons, box_pairs

UTM = 32649


def _mixed_polygons(rng) -> gpd.GeoSeries:
    """Convex cells, L shapes, a polygon with a hole, a multi-polygon, an empty one."""
    x0, y0 = 113.76, 33.98
    step = 0.0006
    cells = [
        shapely.box(x0 + i * step, y0 + j * step, x0 + (i + 1) * step, y0 + (j + 1) * step)
        for i in range(12)
        for j in range(12)
    ]
    shaped = [
        shapely.union_all([cells[0], cells[1], cells[12]]),  # an L
        shapely.box(x0, y0, x0 + 0.01, y0 + 0.01).difference(
            shapely.box(x0 + 0.004, y0 + 0.004, x0 + 0.006, y0 + 0.006)
        ),
        shapely.MultiPolygon([cells[5], cells[40]]),
        shapely.Polygon(),
        shapely.Point(x0, y0).buffer(0.003, quad_segs=5),
    ]
    order = rng.permutation(len(cells) + len(shaped))
    return gpd.GeoSeries(np.array(cells + shaped, dtype=object)[order], crs=4326)


def test_vertices_areas_and_geometries_are_those_of_to_crs():
    series = _mixed_polygons(np.random.default_rng(5))
    expected = series.to_crs(UTM).to_numpy()
    polygons = MetricPolygons.of(series, UTM)
    assert polygons.transformed
    assert np.array_equal(polygons.xy, shapely.get_coordinates(expected))
    # The same numbers as GEOS, not merely close: the shares divide by them.
    assert np.array_equal(polygons.area, shapely.area(expected))
    bounds = shapely.bounds(expected).T
    assert np.allclose(np.vstack(polygons.bounds), bounds, equal_nan=True, rtol=0, atol=0)
    picked = np.array([3, 146, 3, 148])
    assert shapely.equals_exact(polygons.geoms(picked), expected[picked], tolerance=0).all()
    # Convex shapes read from the vertices are those read from the geometries.
    ours = convex_cells_of(polygons.simple, polygons.xy, polygons.which)
    theirs = convex_cells(expected)
    for name in ("convex", "x", "y", "start", "count"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
    assert ours.convex.sum() == 144 + 1  # the lattice cells and the disc


def test_polygons_already_in_metres_are_kept():
    geoms = np.array([shapely.box(0, 0, 3, 2), shapely.box(5, 5, 6, 9)], dtype=object)
    polygons = MetricPolygons.of(geoms)
    assert not polygons.transformed
    assert polygons.geoms()[0] is geoms[0]
    assert polygons.area.tolist() == [6.0, 4.0]


def test_box_pairs_are_the_strtree_pairs():
    rng = np.random.default_rng(11)
    lower = rng.uniform(0, 1000, (3000, 2))
    boxes = (*lower.T, *(lower + rng.uniform(1, 30, (3000, 2))).T)
    boxes[0][7] = np.nan  # an empty box meets nothing
    q_lower = rng.uniform(-50, 1050, (400, 2))
    query = (*q_lower.T, *(q_lower + rng.uniform(0, 200, (400, 2))).T)
    # Boxes touching edge to edge meet, as in GEOS.
    query = tuple(
        np.r_[a, b]
        for a, b in zip(query, (boxes[2][:5], boxes[1][:5], [2e3] * 5, [2e3] * 5), strict=True)
    )
    tree = shapely.STRtree(shapely.box(*boxes))
    expected_q, expected_b = tree.query(shapely.box(*query))
    expected = sorted(zip(expected_q.tolist(), expected_b.tolist(), strict=True))
    q, b = box_pairs(query, boxes)
    assert list(zip(q.tolist(), b.tolist(), strict=True)) == expected
    assert len(expected) > 1000
    # One box far larger than the others: the hash would visit too many cells.
    wide = tuple(np.r_[a, v] for a, v in zip(boxes, (-1e6, -1e6, 1e6, 1e6), strict=True))
    q, b = box_pairs(query, wide, ordered=False)
    assert np.sum(b == len(wide[0]) - 1) == len(query[0])
    assert len(q) == len(expected) + len(query[0])
