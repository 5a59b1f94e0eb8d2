"""gis.assign against PostGIS: the same code and status for every point, distances to 1e-6 m.

The grids and points go into TEMP tables (COPY, no SQL built from values) and
the SQL definition of docs/assignment.md (also in ``gis.assign.index``'s docstring) runs on
them. ``ST_Transform(geom, epsg)`` is materialised once per row (``gm``) and
GiST-indexed, which is the same value the inline form computes, only faster.

Probe points per case: random points over the extent (mostly inside, some in
gaps), vertices, points exactly on axis-parallel edges, edge midpoints (exactly
on the edge or half an ulp off it), points inside the grids' holes, points up to
~60 m around the vertices (snapping), a missing point, and points just past the
ends of edges shared by two grids (snapping ties).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import Connection, Engine, text

from gis.assign import GridIndex
from tests.edge_points import assert_same, edge_points, rounded_onto_a_slanted_edge

pytestmark = pytest.mark.db

DEMO_SEED = 411002
TOLERANCES = (0.0, 30.0)

CREATE_TABLES = [
    "CREATE TEMP TABLE g_in (code text, wkb bytea) ON COMMIT DROP",
    'CREATE TEMP TABLE g (code text COLLATE "C" PRIMARY KEY, geom geometry, gm geometry) '
    "ON COMMIT DROP",
    "CREATE TEMP TABLE p_in (id integer, x float8, y float8) ON COMMIT DROP",
    "CREATE TEMP TABLE p (id integer PRIMARY KEY, geom geometry, gm geometry) ON COMMIT DROP",
]
FILL_GRIDS = """
    INSERT INTO g (code, geom, gm)
    SELECT code, ST_GeomFromWKB(wkb, 4326), ST_Transform(ST_GeomFromWKB(wkb, 4326), :epsg)
    FROM g_in"""
FILL_POINTS = """
    INSERT INTO p (id, geom, gm)
    SELECT id, ST_SetSRID(ST_MakePoint(x, y), 4326),
           ST_Transform(ST_SetSRID(ST_MakePoint(x, y), 4326), :epsg)
    FROM p_in"""  # a NULL coordinate gives a NULL point: a missing location
INDEX_TABLES = [
    "CREATE INDEX ON g USING gist (geom)",
    "CREATE INDEX ON g USING gist (gm)",
    "ANALYZE g",
    "ANALYZE p",
]
ASSIGN = """
    SELECT p.id,
           COALESCE(c.code, s.code) AS code,
           COALESCE(c.status, s.status, 'outside') AS status,
           COALESCE(c.distance_m, s.distance_m) AS distance_m
    FROM p
    LEFT JOIN LATERAL (
        SELECT g.code, 0.0::float8 AS distance_m,
               CASE WHEN ST_Contains(g.geom, p.geom) THEN 'inside' ELSE 'boundary' END AS status
        FROM g WHERE ST_Covers(g.geom, p.geom)
        ORDER BY g.code COLLATE "C" LIMIT 1) c ON true
    LEFT JOIN LATERAL (
        SELECT g.code, 'snapped' AS status, ST_Distance(g.gm, p.gm) AS distance_m
        FROM g
        WHERE CAST(:tolerance AS float8) > 0 AND c.code IS NULL
          AND ST_DWithin(g.gm, p.gm, CAST(:tolerance AS float8))
        ORDER BY 3, g.code COLLATE "C" LIMIT 1) s ON true
    ORDER BY p.id"""


# -- cases -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_district():
    try:
        demo = importlib.import_module("gis.demo")
    except ImportError as error:
        pytest.skip(f"gis.demo is not importable yet ({error}); demo grids not compared")
    return demo.build_demo(seed=DEMO_SEED)


@pytest.fixture(scope="module", params=["chicago_beats", "demo_grids", "demo_micro_grids"])
def grids(request, chicago_dir: Path) -> gpd.GeoDataFrame:
    if request.param == "chicago_beats":
        beats = gpd.read_file(chicago_dir / "chicago_police_beats_277.geojson")
        beats["code"] = [f"{i:04d}" for i in range(len(beats))]  # beat_num has duplicates
        return beats[["code", "geometry"]]
    demo = request.getfixturevalue("demo_district")
    layer = demo.grids if request.param == "demo_grids" else demo.micro_grids
    return layer[["code", "geometry"]]


def probe_points(grids: gpd.GeoDataFrame, seed: int = 11) -> np.ndarray:
    """The probe points of the module docstring, as an (n, 2) array (a NaN row last)."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = grids.total_bounds
    random = np.column_stack([rng.uniform(xmin, xmax, 1500), rng.uniform(ymin, ymax, 1500)])
    vertices = shapely.get_coordinates(grids.geometry.to_numpy())
    around = vertices[rng.choice(len(vertices), 800)] + rng.normal(0, 0.0004, (800, 2))
    return np.vstack(
        [random, edge_points(grids, rng, 250), hole_points(grids, rng), around, [[np.nan, np.nan]]]
    )


def beyond_shared_edges(
    grids: gpd.GeoDataFrame, index: GridIndex, limit: int = 150, seed: int = 12
) -> np.ndarray:
    """Uncovered points on the extension of edges shared by two grids, 3-25 m past the end.

    Where the outer boundary is straight such a point is equally far from both
    grids, so the tie rule (smallest code) decides, in whatever way the floating-
    point distances of each implementation round.
    """
    rings, part = shapely.get_rings(shapely.get_parts(grids.geometry.to_numpy()), return_index=True)
    _, owner = shapely.get_parts(grids.geometry.to_numpy(), return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    a, b, grid = coords[:-1][same], coords[1:][same], owner[part[ring[:-1][same]]]
    forward = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1]))
    edges = pd.DataFrame(np.where(forward[:, None], np.hstack([a, b]), np.hstack([b, a])))
    edges["grid"] = grid
    shared = edges.groupby([0, 1, 2, 3]).grid.nunique().loc[lambda n: n >= 2].index
    ends = np.array([(e[2:], e[:2]) for e in shared] + [(e[:2], e[2:]) for e in shared])
    direction = ends[:, 0] - ends[:, 1]
    direction /= np.hypot(*direction.T)[:, None]
    points = np.vstack([ends[:, 0] + t * 1e-4 * direction for t in (0.3, 1.0, 2.5)])
    points = points[index.assign_xy(points[:, 0], points[:, 1]).status.to_numpy() == "outside"]
    rng = np.random.default_rng(seed)
    return points[rng.permutation(len(points))[:limit]]


def hole_points(grids: gpd.GeoDataFrame, rng: np.random.Generator, per_hole: int = 5) -> np.ndarray:
    """Random points inside each hole of the grids (whatever fills the hole, if anything)."""
    rings, part = shapely.get_rings(shapely.get_parts(grids.geometry.to_numpy()), return_index=True)
    exterior = np.concatenate(([True], part[1:] != part[:-1]))
    holes = shapely.polygons(rings[~exterior])
    found = [shapely.get_coordinates(shapely.point_on_surface(holes))]
    for hole in holes:
        xmin, ymin, xmax, ymax = hole.bounds
        xy = np.column_stack([rng.uniform(xmin, xmax, 50), rng.uniform(ymin, ymax, 50)])
        found.append(xy[shapely.contains_xy(hole, xy[:, 0], xy[:, 1])][:per_hole])
    return np.vstack(found)


# -- PostGIS -----------------------------------------------------------------------------
@pytest.fixture
def conn(pg_engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction (and TEMP tables) is rolled back after the test."""
    with pg_engine.connect() as connection:
        yield connection
        connection.rollback()


def load(conn: Connection, grids: gpd.GeoDataFrame, points: np.ndarray, epsg: int) -> None:
    for statement in CREATE_TABLES:
        conn.execute(text(statement))
    copy(
        conn,
        "COPY g_in (code, wkb) FROM STDIN",
        zip(grids.code, shapely.to_wkb(grids.geometry.to_numpy()), strict=True),
    )
    copy(
        conn,
        "COPY p_in (id, x, y) FROM STDIN",
        ((i, *(None if np.isnan(v) else float(v) for v in xy)) for i, xy in enumerate(points)),
    )
    conn.execute(text(FILL_GRIDS), {"epsg": epsg})
    conn.execute(text(FILL_POINTS), {"epsg": epsg})
    for statement in INDEX_TABLES:
        conn.execute(text(statement))


def copy(conn: Connection, statement: str, rows) -> None:
    """COPY rows on the connection's own transaction (values travel as data, never as SQL)."""
    with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as out:
        for row in rows:
            out.write_row(row)


def postgis_assign(conn: Connection, tolerance: float) -> pd.DataFrame:
    rows = conn.execute(text(ASSIGN), {"tolerance": tolerance}).all()
    return pd.DataFrame(
        {
            "code": pd.Series([r.code for r in rows], dtype=object),
            "status": pd.Series([r.status for r in rows], dtype=object),
            "distance_m": np.array(
                [np.nan if r.distance_m is None else r.distance_m for r in rows]
            ),
        }
    )


# -- tests -------------------------------------------------------------------------------
def test_engine_matches_postgis_on_every_point(conn, grids):
    index = GridIndex(grids)
    beyond = beyond_shared_edges(grids, index)
    points = np.vstack([probe_points(grids), beyond])
    load(conn, grids, points, index.metric_epsg)
    for tolerance in TOLERANCES:
        ours = index.assign_xy(points[:, 0], points[:, 1], tolerance=tolerance)
        assert_same(ours, postgis_assign(conn, tolerance))
    # The probes reach every status, so the comparison covers each rule.
    assert set(ours.status) == {"inside", "boundary", "snapped", "outside"}
    assert len(beyond) >= 50


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known discrepancy: PostGIS decides point-in-polygon with plain double arithmetic "
    "(lw_segment_side), GEOS exactly; for points rounded onto a slanted edge (~1e-21 deg "
    "off it) PostGIS says 'boundary' where gis.assign gives the exact side",
)
def test_points_a_hair_off_a_slanted_edge_match_postgis(conn, chicago_dir):
    beats = gpd.read_file(chicago_dir / "chicago_police_beats_277.geojson")
    beats["code"] = [f"{i:04d}" for i in range(len(beats))]
    points, _ = rounded_onto_a_slanted_edge(beats, np.random.default_rng(3))
    if len(points) < 5:  # not an AssertionError: a broken probe must not pass as the xfail
        raise RuntimeError(f"only {len(points)} probe points found")
    index = GridIndex(beats)
    load(conn, beats, points, index.metric_epsg)
    assert_same(index.assign_xy(points[:, 0], points[:, 1]), postgis_assign(conn, 0.0))
