"""The 多格合一 crosswalk vs ``geopandas.overlay(how="intersection")`` plus a groupby.

A city's 39,000 micro-grids (or grids) against a department's 300-unit theme:
gridmap's :func:`gis.layers.build_crosswalk` (shares of grid and unit, classes,
alignment score) and the peer most code would write — overlay, areas, a groupby
for the shares — on the same data in the same run, alternately, best of
``--repeat``. The shares of every (grid, unit) pair must agree to 1e-9.

The cells are squares of a regular lattice over a Weidu-sized extent; the theme
is 300 Voronoi cells of random seeds clipped to it, so unit boundaries cut
cells at every angle (a worst case: real thematic zones follow roads, and more
grids lie wholly inside one unit).

Examples
--------
    .venv/bin/python benchmarks/bench_crosswalk.py                 # 39,000 cells, 300 units
    .venv/bin/python benchmarks/bench_crosswalk.py --cells 5000 --units 50 --repeat 1
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis.crs import metric_crs  # noqa: E402
from gis.layers import build_crosswalk  # noqa: E402
from gis.layers.crosswalk import MIN_SHARED_M2  # noqa: E402

EXTENT = (113.76, 33.98, 113.88, 34.08)  # lon/lat, about 11 × 11 km


def lattice(n_cells: int) -> gpd.GeoDataFrame:
    west, south, east, north = EXTENT
    side = math.ceil(math.sqrt(n_cells))
    xs = np.linspace(west, east, side + 1)
    ys = np.linspace(south, north, side + 1)
    cells = [
        shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(side) for i in range(side)
    ][:n_cells]
    codes = [f"411002001001{k:06d}" for k in range(len(cells))]
    return gpd.GeoDataFrame({"code": codes}, geometry=cells, crs=4326)


def voronoi_theme(n_units: int, seed: int = 411002) -> gpd.GeoDataFrame:
    west, south, east, north = EXTENT
    rng = np.random.default_rng(seed)
    seeds = shapely.multipoints(
        np.column_stack([rng.uniform(west, east, n_units), rng.uniform(south, north, n_units)])
    )
    frame = shapely.box(*EXTENT)
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    return gpd.GeoDataFrame(
        {"code": [f"P{k:03d}" for k in range(len(cells))]}, geometry=cells, crs=4326
    )


def peer_shares(units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, crs) -> pd.DataFrame:
    """What most code does: overlay in metres, then areas and a groupby for the shares."""
    g = grids.to_crs(crs).assign(grid_area=lambda f: f.area)
    u = units.to_crs(crs).rename(columns={"code": "unit_code"}).assign(unit_area=lambda f: f.area)
    pieces = gpd.overlay(
        g.rename(columns={"code": "grid_code"}), u, how="intersection", keep_geom_type=True
    )
    pieces["shared_m2"] = pieces.area
    pairs = pieces.groupby(["grid_code", "unit_code"], as_index=False).agg(
        shared_m2=("shared_m2", "sum"),
        grid_area=("grid_area", "first"),
        unit_area=("unit_area", "first"),
    )
    pairs["share_of_grid"] = pairs["shared_m2"] / pairs["grid_area"]
    pairs["share_of_unit"] = pairs["shared_m2"] / pairs["unit_area"]
    return pairs


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=39_000)
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    grids, units = lattice(args.cells), voronoi_theme(args.units)
    crs = metric_crs(grids)
    print(f"{len(grids):,} cells × {len(units)} units, metric CRS {crs.to_string()}")

    ours_s, walk = timed(lambda: build_crosswalk(units, grids, metric=crs), args.repeat)
    peer_s, peer = timed(lambda: peer_shares(units, grids, crs), args.repeat)

    ours = walk.pairs.set_index(["grid_code", "unit_code"])  # type: ignore[attr-defined]
    theirs = peer.set_index(["grid_code", "unit_code"])  # type: ignore[attr-defined]
    theirs = theirs[theirs["shared_m2"] > MIN_SHARED_M2]  # what the crosswalk calls no share
    common = ours.index.intersection(theirs.index)
    diff = max(
        float(np.abs(ours.loc[common, col] - theirs.loc[common, col]).max())
        for col in ("share_of_grid", "share_of_unit")
    )
    print(f"pairs: gridmap {len(ours):,}, overlay {len(theirs):,}, common {len(common):,}")
    print(f"largest share difference on common pairs: {diff:.2e} (must be ≤ 1e-9)")
    print(f"gridmap build_crosswalk (median of {args.repeat}): {ours_s:8.3f} s")
    print(f"geopandas overlay + groupby (median of {args.repeat}): {peer_s:8.3f} s")
    print(f"ratio overlay / gridmap: {peer_s / ours_s:.2f}× (target ≥ 5×)")
    if diff > 1e-9 or len(common) != len(ours) or len(common) != len(theirs):
        raise SystemExit("the shares differ from the overlay's")


if __name__ == "__main__":
    main()
