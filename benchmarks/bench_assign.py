"""Benchmark gis.assign.GridIndex against geopandas.sjoin(predicate="within").

Both run in the same process on the same grids and random points; the script
prints the median of ``--repeat`` runs of each step, the speed-up, whether the
codes agree and the peak resident memory of the process.

Grids, by ``--level``:

* ``grid`` / ``micro_grid``: the demo district's grids and micro-grids from
  ``gis.demo.build_demo(seed)`` when that module exists; otherwise a stand-in
  of the same size, a clipped Voronoi tessellation of 620 / 5,500 cells over a
  10 km x 9 km box around 113.82 E, 34.03 N;
* ``chicago``: the 277 Chicago police beats (codes by row order).

Points are uniform over the grids' bounding box, in EPSG:4326.

With ``--database-url`` the same points are also assigned by one PostGIS
``UPDATE ... FROM ... ST_Covers`` (smallest code, boundary status) and every
point's code and status is compared with GridIndex's.

Examples
--------
    .venv/bin/python benchmarks/bench_assign.py --level grid --points 1000000
    .venv/bin/python benchmarks/bench_assign.py --level micro_grid --points 200000 \\
        --repeat 1 --database-url postgresql://postgres@127.0.0.1:5432/gridmap
    .venv/bin/python benchmarks/bench_assign.py --level micro_grid --points 10000000 \\
        --repeat 1 --skip-sjoin
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from gis.assign import GridIndex  # noqa: E402

CHICAGO_BEATS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "real"
    / "chicago"
    / "chicago_police_beats_277.geojson"
)
STAND_IN_SIZES = {"grid": 620, "micro_grid": 5500}
STAND_IN_CENTRE = (113.82, 34.03)  # lon, lat
STAND_IN_BOX_M = (10_000.0, 9_000.0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    grids, source = load_grids(args.level, args.seed, args.stand_in)
    x, y = random_points(grids, args.points, args.seed)
    print(
        f"grids: {len(grids)} {args.level} from {source}; points: {args.points:,}; "
        f"repeat: {args.repeat}; tolerance: {args.tolerance} m"
    )

    build, index = _timed({"build": lambda: GridIndex(grids)}, args.repeat)
    print(
        f"GridIndex build     {build['build']}   ({index!r}, "
        f"boundary cells {index.boundary_share:.1%})"
    )
    steps = {"assign_xy": lambda: index.assign_xy(x, y, tolerance=args.tolerance)}
    if not args.skip_sjoin:
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=grids.crs)
        steps["assign"] = lambda: index.assign(points.geometry, args.tolerance)
        steps["sjoin"] = lambda: gpd.sjoin(points, grids, predicate="within")
    # Interleaved rounds: a noisy neighbour slows every step of a round alike.
    times, results = _timed(steps, args.repeat, keep=True)
    result = results["assign_xy"]
    print(
        f"GridIndex.assign_xy {times['assign_xy']}   "
        f"({args.points / times['assign_xy'].wall / 1e6:.1f} M points/s)"
    )
    print("statuses: " + ", ".join(f"{k} {v:,}" for k, v in result.status.value_counts().items()))
    if not args.skip_sjoin:
        print(f"GridIndex.assign    {times['assign']}   (GeoSeries input)")
        print(f"geopandas.sjoin     {times['sjoin']}")
        print(
            f"speed-up vs sjoin (wall / CPU): "
            f"{times['sjoin'] / times['assign_xy']} with assign_xy, "
            f"{times['sjoin'] / times['assign']} with assign on a GeoSeries"
        )
        print(_agreement(result, results["sjoin"]))
    if args.database_url:
        if args.tolerance > 0:
            print("note: the PostGIS UPDATE implements rule 1 only (no snapping)")
        bench_postgis(args.database_url, grids, x, y, args.repeat, result, times["assign_xy"].wall)
    print(f"peak RSS: {_peak_rss_mib():,.0f} MiB")
    return 0


def load_grids(level: str, seed: int, stand_in: bool = False) -> tuple[gpd.GeoDataFrame, str]:
    """The benchmark grids (EPSG:4326, ``code`` column) and a note of where they came from."""
    if level == "chicago":
        beats = gpd.read_file(CHICAGO_BEATS)
        # beat_num has duplicates: code the beats by row order instead.
        beats["code"] = [f"{i:04d}" for i in range(len(beats))]
        return beats[["code", "geometry"]], CHICAGO_BEATS.name
    try:
        from gis.demo import build_demo
    except ImportError:
        stand_in = True
    if stand_in:
        return stand_in_grids(STAND_IN_SIZES[level], seed), "the Voronoi stand-in"
    demo = build_demo(seed=seed)
    grids = demo.grids if level == "grid" else demo.micro_grids
    return grids[["code", "geometry"]], f"gis.demo.build_demo(seed={seed})"


def stand_in_grids(n: int, seed: int) -> gpd.GeoDataFrame:
    """A Voronoi tessellation of ``n`` random seeds, clipped to the stand-in box.

    Built in UTM zone 49N so the cells are metric, then projected to EPSG:4326;
    neighbours share their edges' vertices exactly.
    """
    rng = np.random.default_rng(seed)
    utm = pyproj.CRS.from_epsg(32649)
    cx, cy = pyproj.Transformer.from_crs(4326, utm, always_xy=True).transform(*STAND_IN_CENTRE)
    half_w, half_h = STAND_IN_BOX_M[0] / 2, STAND_IN_BOX_M[1] / 2
    box = shapely.box(cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    seeds = shapely.multipoints(
        np.column_stack(
            [rng.uniform(cx - half_w, cx + half_w, n), rng.uniform(cy - half_h, cy + half_h, n)]
        )
    )
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box)), box
    )
    grids = gpd.GeoDataFrame(
        {"code": [f"{i:05d}" for i in range(len(cells))]}, geometry=cells, crs=utm
    )
    return grids.to_crs(4326)


def random_points(grids: gpd.GeoDataFrame, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform points over the grids' bounding box."""
    rng = np.random.default_rng(seed + 1)
    xmin, ymin, xmax, ymax = grids.total_bounds
    return rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)


def _agreement(result: pd.DataFrame, joined: gpd.GeoDataFrame) -> str:
    """Compare codes with sjoin on points off every boundary (sjoin's 'within' drops those)."""
    sjoin_code = joined["code_right"] if "code_right" in joined else joined["code"]
    if sjoin_code.index.has_duplicates:
        return "codes: sjoin matched some points twice (overlapping grids); not compared"
    ours = result.loc[result.status == "inside", "code"]
    theirs = sjoin_code.reindex(ours.index)
    differ = int((ours != theirs).sum())
    extra = int((~sjoin_code.index.isin(ours.index)).sum())
    verdict = "identical" if differ == extra == 0 else "DIFFERENT"
    return (
        f"codes: {verdict} on {len(ours):,} inside points ({differ} differ; sjoin matched "
        f"{extra} points not inside here)"
    )


# -- PostGIS ---------------------------------------------------------------------------
POSTGIS_SETUP = [
    "CREATE TEMP TABLE bench_g_in (code text, wkb bytea)",
    "CREATE TEMP TABLE bench_p_in (id bigint, x float8, y float8)",
    'CREATE TEMP TABLE bench_g (code text COLLATE "C" PRIMARY KEY, geom geometry)',
    "CREATE TEMP TABLE bench_p (id bigint PRIMARY KEY, geom geometry, code text, "
    "status text DEFAULT 'outside')",
]
POSTGIS_FILL = [
    "INSERT INTO bench_g SELECT code, ST_GeomFromWKB(wkb, 4326) FROM bench_g_in",
    "INSERT INTO bench_p (id, geom) SELECT id, ST_SetSRID(ST_MakePoint(x, y), 4326) "
    "FROM bench_p_in",
    "CREATE INDEX ON bench_g USING gist (geom)",
    "ANALYZE bench_g",
    "ANALYZE bench_p",
]
# Rule 1 of docs/assignment.md as one UPDATE: DISTINCT ON picks the smallest code
# (a bare UPDATE ... FROM would take an arbitrary covering grid).
POSTGIS_UPDATE = """
    UPDATE bench_p AS p
    SET code = c.code,
        status = CASE WHEN ST_Contains(c.geom, p.geom) THEN 'inside' ELSE 'boundary' END
    FROM (SELECT DISTINCT ON (p.id) p.id, g.code, g.geom
          FROM bench_p AS p JOIN bench_g AS g ON ST_Covers(g.geom, p.geom)
          ORDER BY p.id, g.code) AS c
    WHERE p.id = c.id"""


def bench_postgis(
    url: str,
    grids: gpd.GeoDataFrame,
    x: np.ndarray,
    y: np.ndarray,
    repeat: int,
    result: pd.DataFrame,
    query_s: float,
) -> None:
    """Time the same assignment as an UPDATE in PostGIS and compare every point."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        start = time.perf_counter()
        _load_postgis(conn, grids, x, y)
        load_s = time.perf_counter() - start
        update, _ = _timed({"update": lambda: conn.execute(POSTGIS_UPDATE)}, repeat)
        update_s = update["update"].wall  # the work is the server's: wall time only
        rows = conn.execute("SELECT code, status FROM bench_p ORDER BY id").fetchall()
        conn.rollback()  # TEMP tables and all
    print(f"PostGIS load        {_ms(load_s)}   (COPY, geometries, GiST index)")
    print(
        f"PostGIS UPDATE      {_ms(update_s)}   (ST_Covers, smallest code; "
        f"{update_s / query_s:.0f}x the time of assign_xy)"
    )
    theirs = pd.DataFrame(rows, columns=["code", "status"], dtype=object)
    differ = int(
        (
            (theirs.code.to_numpy() != result.code.to_numpy())
            | (theirs.status.to_numpy() != result.status.to_numpy())
        ).sum()
    )
    print(
        f"PostGIS vs GridIndex: {'identical' if differ == 0 else 'DIFFERENT'} code and status "
        f"on all {len(result):,} points ({differ} differ)"
    )


def _load_postgis(conn, grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> None:
    for statement in POSTGIS_SETUP:
        conn.execute(statement)
    with conn.cursor() as cursor:
        with cursor.copy("COPY bench_g_in (code, wkb) FROM STDIN") as copy:
            for row in zip(grids.code, shapely.to_wkb(grids.geometry.to_numpy()), strict=True):
                copy.write_row(row)
        with cursor.copy("COPY bench_p_in (id, x, y) FROM STDIN") as copy:
            for row in zip(range(len(x)), x.tolist(), y.tolist(), strict=True):
                copy.write_row(row)
    for statement in POSTGIS_FILL:
        conn.execute(statement)


@dataclass(frozen=True)
class Timing:
    """Median wall-clock and process CPU seconds of the runs of one step."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall * 1000:10.1f} ms (CPU {self.cpu * 1000:7.1f} ms)"

    def __truediv__(self, other: Timing) -> str:
        return f"{self.wall / other.wall:.1f}x / {self.cpu / other.cpu:.1f}x"


def _timed(
    steps: dict[str, Callable[[], Any]], repeat: int, keep: bool = False
) -> tuple[dict[str, Timing], Any]:
    """Run the steps in turn, ``repeat`` rounds; median timings and the last results.

    With one step, the second value is its last result; with ``keep``, a dict of
    the last result of every step.
    """
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    last: dict[str, Any] = {}
    for _ in range(repeat):
        for name, run in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            last[name] = run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            if not keep and len(steps) > 1:
                last[name] = None  # free big results between steps
    timings = {n: Timing(statistics.median(wall[n]), statistics.median(cpu[n])) for n in steps}
    return timings, (last if keep or len(steps) > 1 else next(iter(last.values())))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:10.1f} ms"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="number of random points")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step (median reported)")
    parser.add_argument("--level", choices=("grid", "micro_grid", "chicago"), default="grid")
    parser.add_argument("--seed", type=int, default=411002, help="demo district and points seed")
    parser.add_argument("--tolerance", type=float, default=0.0, help="snapping distance, metres")
    parser.add_argument(
        "--stand-in", action="store_true", help="use the Voronoi stand-in even when gis.demo exists"
    )
    parser.add_argument(
        "--skip-sjoin",
        action="store_true",
        help="time GridIndex only (e.g. 10 million points: peak memory)",
    )
    parser.add_argument(
        "--database-url",
        help="also time the same assignment as a PostGIS UPDATE on this "
        "database (TEMP tables only; e.g. postgresql://user@host:port/db)",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
