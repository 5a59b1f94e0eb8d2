"""Points on and a rounding away from grid edges, where point-in-polygon goes wrong.

Shared by the in-memory and the PostGIS assignment tests.
"""

from __future__ import annotations

from fractions import Fraction

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def edge_points(grids: gpd.GeoDataFrame, rng: np.random.Generator, n: int) -> np.ndarray:
    """Points on or a rounding away from the grids' edges.

    Vertices; points exactly on axis-parallel edges (if any: the Chicago beats
    have none, the hand-drawn and lattice grids are full of them); and edge
    midpoints, exactly on their edge when ``a + b`` rounds exactly, otherwise
    half an ulp off it.
    """
    rings = shapely.get_rings(shapely.get_parts(grids.geometry.to_numpy()))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    a, b = coords[:-1][same], coords[1:][same]
    found = [coords[rng.choice(len(coords), n)]]
    for fixed in (0, 1):
        edges = np.flatnonzero((a[:, fixed] == b[:, fixed]) & (a[:, 1 - fixed] != b[:, 1 - fixed]))
        if len(edges):
            pick = rng.choice(edges, n // 2)
            p = a[pick] + rng.random((len(pick), 1)) * (b[pick] - a[pick])
            p[:, fixed] = a[pick, fixed]  # exactly on the edge's line, within its extent
            found.append(p)
    pick = rng.choice(len(a), n)
    found.append((a[pick] + b[pick]) / 2)
    return np.vstack(found)


def assert_same(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    differ = (result.code.to_numpy() != expected.code.to_numpy()) | (
        result.status.to_numpy() != expected.status.to_numpy()
    )
    assert not differ.any(), pd.concat([result[differ], expected[differ]], axis=1).head()
    np.testing.assert_allclose(result.distance_m, expected.distance_m, atol=1e-6, rtol=0)


def rounded_onto_a_slanted_edge(
    grids: gpd.GeoDataFrame, rng: np.random.Generator, samples: int = 400_000
) -> tuple[np.ndarray, np.ndarray]:
    """Points interpolated along the grids' longest slanted edge that plain doubles misjudge.

    ``a + t (b - a)`` rounds to a point a hair (~1e-21 degrees) off the edge; for
    about 1 in 20,000 of them the orientation computed in plain double arithmetic,
    as PostGIS's ``lw_segment_side`` does, is exactly 0 although the exact one is
    not. Returns those points and the sign of their exact orientation.
    """
    rings = shapely.get_rings(shapely.get_parts(grids.geometry.to_numpy()))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    a, b = coords[:-1][same], coords[1:][same]
    d = np.abs(b - a)
    slanted = np.where(d.min(axis=1) > 0.2 * d.max(axis=1), np.hypot(*d.T), 0.0)
    a, b = a[np.argmax(slanted)], b[np.argmax(slanted)]
    q = a + rng.random((samples, 1)) * (b - a)
    naive = (q[:, 0] - a[0]) * (b[1] - a[1]) - (b[0] - a[0]) * (q[:, 1] - a[1])
    fa, fb = [Fraction(v) for v in a], [Fraction(v) for v in b]
    points, signs = [], []
    for x, y in q[naive == 0]:
        exact = (Fraction(x) - fa[0]) * (fb[1] - fa[1]) - (fb[0] - fa[0]) * (Fraction(y) - fa[1])
        if exact != 0:
            points.append((x, y))
            signs.append(1 if exact > 0 else -1)
    return np.array(points).reshape(-1, 2), np.array(signs)
