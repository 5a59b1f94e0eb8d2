"""End-to-end bulk assignment in PostGIS: `gridmap assign --all` vs PostGIS's own join.

In one run on the same data: N random incidents (default 1,000,000) over the
demo district are COPYed into a scratch database, then

1. gridmap's path — `app.services.assignment.assign_stored` (what `gridmap assign --all`
   runs): read in chunks, assign street/community/grid/micro-grid in memory,
   write back through COPY + UPDATE … FROM;
2. the peer — one `UPDATE incident SET grid_code = … FROM area WHERE ST_Covers`
   join done by PostGIS itself (grid level only, smallest code on ties),

and the grid codes of both are compared. Target: (1) within 60 s end to end.

    python benchmarks/bench_assign_db.py [--points 1000000] [--skip-postgis]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import PROJECT_ROOT  # noqa: E402
from app.db import repo  # noqa: E402
from app.db.embedded import EmbeddedPostgres  # noqa: E402
from app.db.session import make_engine, upgrade  # noqa: E402
from app.services.area_import import import_areas_on  # noqa: E402
from app.services.assignment import assign_stored, load_hierarchy  # noqa: E402
from gis.codes import LEVELS  # noqa: E402
from gis.demo import build_demo  # noqa: E402

BENCH_DB = "gridmap_bench"


def fresh_database() -> str:
    cluster = EmbeddedPostgres(PROJECT_ROOT / "var" / "pg")
    admin = cluster.ensure("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )
    url = cluster.ensure(BENCH_DB)
    upgrade(url)
    return url


def load_areas(engine, demo) -> None:
    frames = {
        "district": demo.district,
        "street": demo.streets,
        "community": demo.communities,
        "grid": demo.grids,
        "micro_grid": demo.micro_grids,
    }
    with engine.begin() as conn:
        repo.create_generation(conn, "bench", activate=True)
        for level in LEVELS:
            import_areas_on(
                conn,
                frames[level],
                level,
                source="bench",
                generation="bench",
                code_field="code",
                parent_field="parent_code" if level != "district" else None,
            )


def load_points(engine, demo, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = demo.district.total_bounds
    lon = rng.uniform(minx, maxx, n)
    lat = rng.uniform(miny, maxy, n)
    started = time.perf_counter()
    frame = pd.DataFrame(
        {
            "external_id": [f"bench-{i}" for i in range(n)],
            "source": "patrol",
            "location_status": "located",
            "location": shapely.to_wkb(
                shapely.set_srid(shapely.points(lon, lat), 4326), hex=True, include_srid=True
            ),
        }
    )
    with engine.begin() as conn:
        repo.copy_frame(conn, "incident", frame)
        conn.execute(text("ANALYZE incident"))
    return time.perf_counter() - started


def postgis_join(engine) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE incident ADD COLUMN IF NOT EXISTS pg_grid text"))
        conn.execute(
            text(
                "UPDATE incident AS i SET pg_grid = g.code FROM ("
                "  SELECT DISTINCT ON (i2.id) i2.id, a.code FROM incident i2 JOIN area a "
                "  ON a.level = 'grid' AND ST_Covers(a.geom, i2.location) "
                "  ORDER BY i2.id, a.code) AS g WHERE i.id = g.id"
            )
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-postgis", action="store_true", help="skip the (slow) PostGIS join")
    args = parser.parse_args()

    demo = build_demo(n_incidents=0)
    url = fresh_database()
    engine = make_engine(url)
    load_areas(engine, demo)
    copy_s = load_points(engine, demo, args.points, args.seed)
    print(f"COPY of {args.points:,} incidents: {copy_s:.1f} s")

    with engine.connect() as conn:
        build_started = time.perf_counter()
        load_hierarchy(conn, repo.active_generation(conn).id)
        build_s = time.perf_counter() - build_started
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        report = assign_stored(engine)  # what `gridmap assign --all` runs, index build included
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(
        f"gridmap assign --all: median {median:.1f} s over {args.repeat} runs "
        f"(runs: {', '.join(f'{t:.1f}' for t in times)}; index build {build_s:.1f} s; "
        f"{args.points / median:,.0f} incidents/s) → target ≤ 60 s: "
        f"{'met' if median <= 60 else 'NOT met'}"
    )
    print(f"  statuses: {report.by_status}")
    if args.skip_postgis:
        return
    pg_s = postgis_join(engine)
    with engine.connect() as conn:
        differ = conn.execute(
            text(
                "SELECT count(*) FROM incident i JOIN incident_current c ON c.id = i.id "
                "WHERE i.pg_grid IS DISTINCT FROM c.grid_code"
            )
        ).scalar_one()
    print(
        f"PostGIS UPDATE … FROM … ST_Covers (grid level only): {pg_s:.1f} s; "
        f"gridmap all four levels is {pg_s / median:.1f}× faster"
    )
    print(f"grid codes differing between gridmap and PostGIS: {differ}")


if __name__ == "__main__":
    main()
