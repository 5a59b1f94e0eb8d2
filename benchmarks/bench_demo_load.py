"""How long the demo district takes to build and to load into PostGIS.

In one run: build_demo() (pure generation), then `load_demo` into a fresh
database (areas of every level validated and COPYed, staff, gazetteer, 50,000
incidents cleaned, geocoded, assigned and COPYed), repeated; and, as the peer,
``GeoDataFrame.to_postgis`` (GeoAlchemy2 inserts) of the same 5,490 micro-grids
into the same ``area`` table against gridmap's COPY of them.

    python benchmarks/bench_demo_load.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg
import shapely
from psycopg import sql
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import PROJECT_ROOT  # noqa: E402
from app.db import repo  # noqa: E402
from app.db.embedded import EmbeddedPostgres  # noqa: E402
from app.db.session import make_engine, upgrade  # noqa: E402
from app.services.demo import load_demo  # noqa: E402
from gis.demo import build_demo  # noqa: E402

BENCH_DB = "gridmap_bench_load"


def fresh_engine():
    cluster = EmbeddedPostgres(PROJECT_ROOT / "var" / "pg")
    admin = cluster.ensure("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )
    url = cluster.ensure(BENCH_DB)
    upgrade(url)
    return make_engine(url)


def reset(engine) -> int:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE area, generation RESTART IDENTITY CASCADE"))
        return repo.create_generation(conn, "bench", activate=True).id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    builds, loads = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        demo = build_demo()
        builds.append(time.perf_counter() - started)
        engine = fresh_engine()
        started = time.perf_counter()
        report = load_demo(engine, demo)
        loads.append(time.perf_counter() - started)
        engine.dispose()
    print(
        f"build_demo(): median {statistics.median(builds):.1f} s "
        f"(runs {', '.join(f'{t:.1f}' for t in builds)})"
    )
    print(
        f"load_demo() into a fresh PostGIS: median {statistics.median(loads):.1f} s "
        f"(runs {', '.join(f'{t:.1f}' for t in loads)}) — "
        f"{sum(report.counts.values()):,} areas, {report.staff:,} staff, "
        f"{report.gazetteer:,} addresses, {report.incidents_stored:,} incidents"
    )

    # Both write into the real `area` table, with its constraints and indexes; only the
    # way rows travel differs.
    micro = demo.micro_grids
    engine = fresh_engine()
    copies, peers = [], []
    for _ in range(args.repeat):
        gen = reset(engine)
        prepared = micro.assign(area_m2=0.0)
        started = time.perf_counter()
        with engine.begin() as conn:
            repo.copy_areas(conn, prepared, gen, None)
        copies.append(time.perf_counter() - started)
        gen = reset(engine)
        rows = micro.assign(generation_low=gen, generation_high=gen, area_m2=0.0)
        rows["geometry"] = [shapely.MultiPolygon([g]) for g in rows.geometry]
        rows = rows.rename_geometry("geom")
        started = time.perf_counter()
        rows.to_postgis("area", engine, if_exists="append", index=False)
        peers.append(time.perf_counter() - started)
    copy_s, peer_s = statistics.median(copies), statistics.median(peers)
    print(
        f"{len(micro):,} micro-grids: gridmap COPY {copy_s:.2f} s, "
        f"GeoDataFrame.to_postgis {peer_s:.2f} s → COPY is {peer_s / copy_s:.1f}× faster"
    )


if __name__ == "__main__":
    main()
