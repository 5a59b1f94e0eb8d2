"""Bulk paths at city scale: incident import and assignment, gridmap vs hand-written PostGIS.

In one run, on the same generated data — the full city of ``gridmap demo --city
--preset full`` (6 districts, 3,900 grids, ~39,000 micro-grids) and its
incidents, written once as CSV files of each size (beyond the generated
1,000,000 the rows repeat with new ticket numbers; below, an even sample of
them) — for every size:

1. gridmap, as a user runs it: ``gridmap incidents import FILE --id-field
   external_id`` (read, clean, convert GCJ-02, geocode address-only rows,
   assign, store through binary COPY, all or nothing), then ``gridmap assign
   --all`` (re-assign every incident to street, community, grid and micro-grid);
   each a subprocess timed with its peak memory (``ru_maxrss``), CLI start-up
   included;
2. the hand-written PostGIS path: ``COPY`` of the same file into a plain table,
   one ``UPDATE … SET geom = ST_MakePoint(…)``, then one ``UPDATE … FROM area
   … ST_Covers`` per level (no cleaning, no GCJ-02, no geocoding: less work).

Then the grid codes of both are compared. Medians over ``--repeat`` runs, and
ratios (PostGIS time / gridmap time: above 1, gridmap is faster). Targets at
1M: gridmap faster than the PostGIS path; assignment ≤ 20 s. Peak memory is
the gridmap process's own (``/usr/bin/time``); the import reads its file in
chunks, so it stays near the same from 100k to 10M rows. The PostGIS path's
memory is the server's (shared buffers, work_mem), not a process of ours: none
is shown.

The database (``--db``, default ``gridmap_bench_bulk``) is dropped and created
in the project's embedded cluster; the files are kept under ``var/bench_bulk``.
``--profile`` then runs one import and one assignment of the largest size in
this process under cProfile and prints where the time went.

    python benchmarks/bench_bulk.py [--sizes 100000,1000000,10000000] [--repeat 1]
                                    [--db NAME] [--keep-db] [--profile] [--skip-postgis]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import PROJECT_ROOT  # noqa: E402
from app.db.embedded import EmbeddedPostgres  # noqa: E402
from app.db.session import make_engine, upgrade  # noqa: E402
from app.services.demo import _incident_text, load_demo  # noqa: E402
from gis.demo.city import build_city  # noqa: E402

BENCH_DB = "gridmap_bench_bulk"  # --db
GRIDMAP = Path(sys.executable).parent / "gridmap"
LEVELS = ("street", "community", "grid", "micro_grid")
GENERATED = 1_000_000


@dataclasses.dataclass
class Run:
    seconds: float
    peak_mb: float


def bench_db() -> str:
    return os.environ.get("GRIDMAP_BENCH_DB", BENCH_DB)


def fresh_database() -> str:
    cluster = EmbeddedPostgres(PROJECT_ROOT / "var" / "pg")
    admin = cluster.ensure("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(bench_db()))
        )
    url = cluster.ensure(bench_db())
    upgrade(url)
    return url


def write_files(base: pd.DataFrame, sizes: list[int], folder: Path) -> dict[int, Path]:
    """One CSV per size: the city's incidents, repeated with new ticket numbers past 1M."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for size in sizes:
        path = folder / f"incidents_{size}.csv"
        files[size] = path
        if path.exists():
            continue
        with pa_csv.CSVWriter(path, pa.Schema.from_pandas(base, preserve_index=False)) as out:
            for copy, start in enumerate(range(0, size, len(base))):
                take = min(len(base), size - start)  # evenly spread over the twelve months
                part = base.iloc[np.linspace(0, len(base) - 1, take).astype(np.int64)].copy()
                if copy:
                    part["external_id"] = part["external_id"] + f"-r{copy}"
                out.write_table(pa.Table.from_pandas(part, preserve_index=False))
    return files


def timed_cli(*args: str) -> Run:
    """A gridmap command in a subprocess: wall time and its peak RSS.

    The peak is measured by ``/usr/bin/time`` around the command: a child forked
    straight from this (large) process would report this process's high-water mark.
    """
    env = {**os.environ, "GRIDMAP_DATABASE_NAME": bench_db()}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, str(GRIDMAP), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"gridmap {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        peak_kb = int(Path(rss.name).read_text().split()[-1])
    return Run(seconds, peak_kb / 1024)


def plain_areas(engine) -> None:
    """The active generation's areas in a plain table with a GiST index: the hand path's."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS plain_area"))
        conn.execute(
            text(
                "CREATE TABLE plain_area AS SELECT a.level, a.code, a.geom FROM area a "
                "JOIN generation g ON g.is_active "
                "AND a.generation_low <= g.id AND a.generation_high >= g.id"
            )
        )
        conn.execute(text("CREATE INDEX ON plain_area USING gist (geom)"))
        conn.execute(text("ANALYZE plain_area"))


def clear_incidents(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE incident, incident_assignment CASCADE"))
        conn.execute(text("DROP TABLE IF EXISTS plain_incident"))


#: The file's columns the plain path types; the rest (the history's) it keeps as text.
TYPED = {"reported_at": "timestamptz", "lon": "float8", "lat": "float8"}


def postgis_path(url: str, path: Path) -> tuple[float, float]:
    """COPY into a plain table + point geometry, then one ST_Covers UPDATE per level."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    columns = ", ".join(header)
    nullable = ", ".join(c for c in header if c not in ("external_id", "source"))
    typed = ", ".join(f"{c} {TYPED.get(c, 'text')}" for c in header)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        started = time.perf_counter()
        conn.execute(
            f"CREATE TABLE plain_incident ({typed}, geom geometry(Point, 4326), "
            "street_code text, community_code text, grid_code text, micro_grid_code text)"
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY plain_incident ({columns}) FROM STDIN (FORMAT csv, HEADER, "
                f"FORCE_NULL ({nullable}))"
            ) as copy,
            path.open("rb") as source,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
        conn.execute("UPDATE plain_incident SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326)")
        conn.commit()
        imported = time.perf_counter() - started
        started = time.perf_counter()
        for level in LEVELS:
            conn.execute(
                f"UPDATE plain_incident p SET {level}_code = a.code FROM plain_area a "
                f"WHERE a.level = '{level}' AND ST_Covers(a.geom, p.geom)"
            )
        conn.commit()
        return imported, time.perf_counter() - started


def agreement(engine) -> tuple[int, int]:
    """(rows compared, rows whose grid differs) between gridmap and the PostGIS path."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE p.grid_code IS DISTINCT FROM c.grid_code) "
                "FROM plain_incident p JOIN incident_current c USING (source, external_id) "
                "WHERE p.crs = 'wgs84'"  # GCJ-02 and address-only rows: the plain path can't
            )
        ).one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=340700)
    parser.add_argument("--skip-postgis", action="store_true")
    parser.add_argument("--profile", action="store_true", help="then profile the largest size")
    parser.add_argument(
        "--keep-db", action="store_true", help="reuse the database and files of an earlier run"
    )
    parser.add_argument("--db", default=BENCH_DB, help="database to (re)create for the run")
    args = parser.parse_args()
    if args.db in ("gridmap", "gridmap_city"):
        raise SystemExit(f"{args.db} is a working database: the benchmark drops its own")
    os.environ["GRIDMAP_BENCH_DB"] = args.db
    sizes = [int(s) for s in args.sizes.split(",")]

    folder = PROJECT_ROOT / "var" / "bench_bulk"
    files = {size: folder / f"incidents_{size}.csv" for size in sizes}
    generated = folder / f"incidents_{GENERATED}.csv"
    if args.keep_db and (all(f.exists() for f in files.values()) or generated.exists()):
        url = EmbeddedPostgres(PROJECT_ROOT / "var" / "pg").ensure(bench_db())
        engine = make_engine(url)
        print(f"reusing {bench_db()} and {folder}")
        if not all(f.exists() for f in files.values()):  # other sizes from the generated rows
            base = pd.read_csv(generated, dtype=str, keep_default_na=False, na_values=[""])
            files = write_files(base, sizes, folder)
    else:
        started = time.perf_counter()
        city = build_city(seed=args.seed, preset="full", n_incidents=GENERATED)
        print(f"generated the full city in {time.perf_counter() - started:.0f} s: {city.summary()}")
        url = fresh_database()
        engine = make_engine(url)
        started = time.perf_counter()
        areas_only = dataclasses.replace(city, incidents=city.incidents.iloc[:0])
        load_demo(engine, areas_only, generation="city")
        print(f"loaded its areas, staff and gazetteer in {time.perf_counter() - started:.0f} s")
        plain_areas(engine)
        files = write_files(_incident_text(city.incidents), sizes, folder)

    print(f"{'size':>11} {'step':<28} {'median s':>9} {'peak MB':>8}")
    for size in sizes:
        runs: dict[str, list] = {"import": [], "assign": [], "pg_import": [], "pg_assign": []}
        for _ in range(args.repeat):
            clear_incidents(engine)
            run = timed_cli("incidents", "import", str(files[size]), "--id-field", "external_id")
            runs["import"].append(run)
            print(
                f"  ({size:,}: import {run.seconds:.1f} s, peak {run.peak_mb:.0f} MB)", flush=True
            )
            run = timed_cli("assign", "--all")
            runs["assign"].append(run)
            print(
                f"  ({size:,}: assign {run.seconds:.1f} s, peak {run.peak_mb:.0f} MB)", flush=True
            )
            if not args.skip_postgis:
                pg_import, pg_assign = postgis_path(url, files[size])
                runs["pg_import"].append(Run(pg_import, float("nan")))
                runs["pg_assign"].append(Run(pg_assign, float("nan")))
        report(size, runs)
        if not args.skip_postgis:
            compared, differ = agreement(engine)
            print(f"{'':>11} grid codes compared {compared:,}, differing {differ:,}")
    if args.profile:
        profile(engine, files[max(sizes)])


def profile(engine, path: Path) -> None:
    """Where the time goes: one import and one assignment in this process, under cProfile."""
    import cProfile
    import pstats

    from app.services.assignment import assign_stored
    from app.services.incident_import import import_incident_file
    from gis.incidents import FieldMap

    clear_incidents(engine)
    for label, work in (
        ("import", lambda: import_incident_file(engine, path, fields=FieldMap(id="external_id"))),
        ("assign --all", lambda: assign_stored(engine)),
    ):
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(work)
        print(f"--- profile of {label} ({path.name}): {time.perf_counter() - started:.1f} s ---")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def report(size: int, runs: dict[str, list]) -> None:
    def median(step: str) -> float:
        return statistics.median(r.seconds for r in runs[step]) if runs[step] else float("nan")

    labels = {
        "import": "gridmap incidents import",
        "assign": "gridmap assign --all",
        "pg_import": "PostGIS COPY + geom",
        "pg_assign": "PostGIS 4× UPDATE ST_Covers",
    }
    for step, label in labels.items():
        if runs[step]:
            peak = max(r.peak_mb for r in runs[step])
            shown = "-" if np.isnan(peak) else f"{peak:.0f}"
            print(f"{size:>11,} {label:<28} {median(step):>9.1f} {shown:>8}")
    if runs["pg_assign"]:
        total = median("import") + median("assign")
        pg_total = median("pg_import") + median("pg_assign")
        print(
            f"{'':>11} ratio PostGIS/gridmap: assignment "
            f"{median('pg_assign') / median('assign'):.2f}×, "
            f"import+assignment {pg_total / total:.2f}× (above 1: gridmap faster); "
            f"assignment ≤ 20 s: {'met' if median('assign') <= 20 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
