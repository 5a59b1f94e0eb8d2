"""The lookup index and the coverage check at city scale: built, read back, and unions.

On the areas of a loaded database (default ``gridmap_city_full``, from
``gridmap demo --city --preset full``; set ``GRIDMAP_DATABASE_NAME`` for another),
in one run:

1. building the four-level :class:`gis.assign.HierarchyIndex` from the areas,
   against reading it back from the :class:`app.services.index_store.IndexStore`
   file (what the server and the CLI do once it exists);
2. uniting each level as :func:`gis.coverage.check_coverage` does for a valid
   coverage (``shapely.coverage_is_valid`` + ``coverage_union_all``), against one
   general ``shapely.union_all`` per level (the overlay it ran before), and the
   whole coverage check.

CPU time (``time.process_time``) is printed next to wall time: the machine is
often shared. Ratios above 1: the first is slower.

    GRIDMAP_DATABASE_NAME=gridmap_city_full python benchmarks/bench_index.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GRIDMAP_DATABASE_NAME", "gridmap_city_full")

from app.config import Settings  # noqa: E402
from app.db import repo  # noqa: E402
from app.db.session import make_engine  # noqa: E402
from app.services.index_store import IndexStore, build_hierarchy  # noqa: E402
from app.services.map_data import load_map_data  # noqa: E402
from gis import crs as crs_mod  # noqa: E402
from gis.coverage import check_coverage  # noqa: E402


def timed(what: str, call):
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {what:<48} wall {wall:7.2f} s   cpu {cpu:7.2f} s", flush=True)
    return result, wall, cpu


def main() -> None:
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url())
    print(f"database {settings.database_name}; load average {os.getloadavg()[0]:.2f}")
    with engine.connect() as conn, tempfile.TemporaryDirectory() as directory:
        gen = repo.active_generation(conn)
        if gen is None:
            raise SystemExit("no active generation: load the city first")
        store = IndexStore(Path(directory))
        print("lookup index (street, community, grid, micro-grid)")
        index, _, build_cpu = timed("built from the areas", lambda: build_hierarchy(conn, gen.id))
        print("  " + ", ".join(f"{lv} {len(ix):,}" for lv, ix in index.indexes.items()))
        timed("built and stored (first start)", lambda: store.hierarchy(conn, gen.id))
        _, _, read_cpu = timed(
            "read back (every later start)", lambda: store.hierarchy(conn, gen.id)
        )
        print(f"  build / read back (cpu): {build_cpu / read_cpu:.1f}x")
        data = load_map_data(conn)
    areas = data.all_areas()
    metric = areas.to_crs(crs_mod.metric_crs(areas))
    print("unions per level")
    general_cpu = coverage_cpu = 0.0
    for level in ("street", "community", "grid", "micro_grid"):
        geoms = np.asarray(metric[metric["level"] == level].geometry.values)
        general, _, cpu_a = timed(f"{level}: union_all", lambda g=geoms: shapely.union_all(g))
        valid, _, cpu_b = timed(
            f"{level}: coverage_is_valid", lambda g=geoms: shapely.coverage_is_valid(g)
        )
        united, _, cpu_c = timed(
            f"{level}: coverage_union_all", lambda g=geoms: shapely.coverage_union_all(g)
        )
        print(
            f"    valid coverage {bool(valid)}; areas differ by "
            f"{abs(general.area - united.area):.2e} m² of {general.area:,.0f}"
        )
        general_cpu += cpu_a
        coverage_cpu += cpu_b + cpu_c
    print(f"  union_all / (check + coverage union) (cpu): {general_cpu / coverage_cpu:.1f}x")
    incidents = data.incidents[["id", "lon", "lat"]]
    print("coverage check")
    report, _, _ = timed("check_coverage", lambda: check_coverage(areas, data.staff, incidents))
    print(f"  defects {report.counts}")


if __name__ == "__main__":
    main()
