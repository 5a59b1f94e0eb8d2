"""The 多格合一 crosswalk vs ``geopandas.overlay(how="intersection")`` plus a groupby.

A city's 39,000 micro-grids (or grids) against a department's 300-unit theme, on
the same data in the same run, median of ``--repeat`` runs each:

* the peer most code would write: overlay in metres, areas, a groupby for the
  shares of grid and unit;
* gridmap's :func:`gis.layers.crosswalk.shared_areas`: the same pairs and shares;
* gridmap's :func:`gis.layers.build_crosswalk`: the shares plus households, the
  class of every grid and the alignment score (boundary within 10 m of a grid's).

Every side starts from the same longitude/latitude frames and the same metric
CRS, and its time includes projecting them (``to_crs`` for the overlay, gridmap's
own projection of the vertices). The shares of every (grid, unit) pair must agree
with the overlay's to 1e-9, and the pairs must be the same; the medians of wall
and CPU time and both ratios are printed, with the load of the machine before and
after (on a shared machine the CPU time is the steadier figure).

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
import os
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
from gis.layers.crosswalk import MIN_SHARED_M2, shared_areas  # noqa: E402

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


def timed(runs: dict, repeat: int) -> dict[str, tuple[float, float, object]]:
    """Median wall and CPU seconds and last result of each run, the runs taking turns.

    Both sides run on one thread; on a shared machine the CPU time is the steadier
    figure (the wall time counts the waits for other processes too).
    """
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, object] = {}
    for _ in range(repeat):
        for name, fn in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            results[name] = fn()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return {
        name: (statistics.median(wall[name]), statistics.median(cpu[name]), results[name])
        for name in runs
    }


def largest_difference(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[float, bool]:
    """Largest share difference on the pairs both found, and whether the pairs are the same."""
    ours = ours.set_index(["grid_code", "unit_code"])
    theirs = theirs.set_index(["grid_code", "unit_code"])
    theirs = theirs[theirs["shared_m2"] > MIN_SHARED_M2]  # what the crosswalk calls no share
    common = ours.index.intersection(theirs.index)
    diff = max(
        float(np.abs(ours.loc[common, col] - theirs.loc[common, col]).max())
        for col in ("share_of_grid", "share_of_unit")
    )
    return diff, len(common) == len(ours) == len(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=39_000)
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    grids, units = lattice(args.cells), voronoi_theme(args.units)
    crs = metric_crs(grids)
    print(f"{len(grids):,} cells × {len(units)} units, metric CRS {crs.to_string()}")
    load_before = os.getloadavg()

    done = timed(
        {
            "peer": lambda: peer_shares(units, grids, crs),
            "shares": lambda: shared_areas(units, grids, metric=crs),
            "full": lambda: build_crosswalk(units, grids, metric=crs),
        },
        args.repeat,
    )
    (peer_s, peer_cpu, peer), (shares_s, shares_cpu, shares), (full_s, full_cpu, walk) = (
        done.values()
    )

    same = True
    for label, ours in (("shared_areas", shares), ("build_crosswalk", walk.pairs)):  # type: ignore[attr-defined]
        diff, same_pairs = largest_difference(ours, peer)  # type: ignore[arg-type]
        same &= diff <= 1e-9 and same_pairs
        print(
            f"{label}: {len(ours):,} pairs (overlay {len(peer):,}), same pairs: {same_pairs}, "  # type: ignore[arg-type]
            f"largest share difference {diff:.2e} (must be ≤ 1e-9)"
        )
    load_after = os.getloadavg()
    print(
        "load average (1, 5, 15 min) before "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + "; after "
        + ", ".join(f"{v:.2f}" for v in load_after)
    )
    print(f"medians of {args.repeat} runs              wall s    CPU s")
    print(f"geopandas overlay + groupby     {peer_s:8.3f} {peer_cpu:8.3f}")
    print(f"gridmap shared_areas            {shares_s:8.3f} {shares_cpu:8.3f}")
    print(f"gridmap build_crosswalk, full   {full_s:8.3f} {full_cpu:8.3f}")
    print(
        f"ratio overlay / shared_areas:    {peer_s / shares_s:.2f}× wall, "
        f"{peer_cpu / shares_cpu:.2f}× CPU (target ≥ 5×)"
    )
    print(
        f"ratio overlay / build_crosswalk: {peer_s / full_s:.2f}× wall, "
        f"{peer_cpu / full_cpu:.2f}× CPU (with households, classes and the boundary score)"
    )
    if not same:
        raise SystemExit("the shares differ from the overlay's")


if __name__ == "__main__":
    main()
