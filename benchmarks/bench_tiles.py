"""Vector tiles, OGC items and the map page, against tipg and against the embedded page.

One run on the database gridmap uses (the active generation; load a city first with
``gridmap demo --city --preset full`` for the city-scale figures):

1. **Tiles** — p50/p95 latency of ``/tiles/grids/{z}/{x}/{y}.mvt`` and
   ``/tiles/micro_grids/…`` for z12–z16 against tipg's
   ``/collections/{id}/tiles/WebMercatorQuad/{z}/{x}/{y}`` on the same tiles of the
   same rows (tipg serves views of ``area`` for the active generation, created in
   the schema ``gridmap_bench``), one request at a time, alternating servers.
2. **OGC items** — throughput and p95 of ``/collections/grids/items?limit=100`` with
   a bbox and paging (offset 0, 100, 200), 16 connections, against tipg's items of
   the same view.
3. **The map page** — bytes of ``/map`` (assets excluded), the first ``/map`` after
   start (both from process start and after the server answers), and the time to a
   drawn page in headless Chromium (data-gridmap-ready, then every tile layer
   loaded), for the page drawing large levels from tiles and for the embedded
   GeoJSON page of before (``GRIDMAP_MAP_VECTOR_TILES=false``), on the same data.
   The pages are requested with a viewer key (incidents, counts, hot spots).

tipg is installed from PyPI into ``var/bench/tipg-venv`` (created when missing; it
is not a dependency of gridmap). Both servers run one worker process on loopback.

Examples
--------
    .venv/bin/python benchmarks/bench_tiles.py
    GRIDMAP_DATABASE_NAME=gridmap_city .venv/bin/python benchmarks/bench_tiles.py --tiles 30
    GRIDMAP_DATABASE_NAME=gridmap_city .venv/bin/python benchmarks/bench_tiles.py \
        --only-tiles --tiles 30 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "var" / "bench" / "tipg-venv"
TIPG = "tipg==1.6.1"
SCHEMA = "gridmap_bench"
LEVELS = {"grids": "grid", "micro_grids": "micro_grid"}
CHROMIUM = "/usr/bin/chromium"


# -- servers ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_tipg() -> Path:
    """The tipg virtualenv's uvicorn, creating the environment on first use."""
    uvicorn = VENV / "bin" / "uvicorn"
    if not uvicorn.exists():
        print(f"creating {VENV.relative_to(ROOT)} with {TIPG} from PyPI (once) …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", TIPG, "uvicorn"], check=True)
    return uvicorn


def wait_up(url: str, process: subprocess.Popen, seconds: float = 600) -> float:
    """Seconds until ``url`` answers 200 (the process must stay alive)."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {seconds} s")


@contextmanager
def process(command: list[str], env: dict, cwd: Path) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def gridmap_command(port: int) -> list[str]:
    return [sys.executable, "-c", "from app.cli import main; main()", "serve", "--port", str(port)]


def gridmap_env(url: str, tiles: bool, page_dir: Path | None = None) -> dict:
    """The server of today (tiles, pages kept in ``page_dir``) or of before (neither)."""
    return {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_INDEX_REFRESH_SECONDS": "0",
        "GRIDMAP_MAP_VECTOR_TILES": "true" if tiles else "false",
        "GRIDMAP_MAP_PAGE_STORE": "true" if page_dir else "false",
        "GRIDMAP_MAP_PAGE_DIR": str(page_dir or ""),
    }


def tipg_env(url: str) -> dict:
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    return {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": libpq,
        "TIPG_DB_SCHEMAS": f'["{SCHEMA}"]',
        "TIPG_DB_SPATIAL_EXTENT": "false",
        "TIPG_DB_DATETIME_EXTENT": "false",
    }


# -- the data --------------------------------------------------------------------------
def prepare_views(engine: Engine) -> tuple[int, str, tuple[float, float, float, float]]:
    """Views of the active generation's levels for tipg; its id, label and grids' extent."""
    with engine.begin() as conn:
        gen, label = conn.execute(text("SELECT id, label FROM generation WHERE is_active")).one()
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        for view, level in LEVELS.items():
            conn.execute(text(f"DROP VIEW IF EXISTS {SCHEMA}.{view}"))
            conn.execute(
                text(
                    f"CREATE VIEW {SCHEMA}.{view} AS SELECT id, code, name, level, kind, geom "
                    f"FROM public.area WHERE level = '{level}' "
                    f"AND generation_low <= {int(gen)} AND generation_high >= {int(gen)}"
                )
            )
        extent = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                f"(SELECT ST_Extent(geom) AS e FROM {SCHEMA}.grids) s"
            )
        ).one()
    return int(gen), str(label), tuple(float(v) for v in extent)  # type: ignore[return-value]


def tiles_over(extent, z: int, count: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """Up to ``count`` tiles of zoom ``z`` over ``extent`` (seeded sample)."""
    import math

    def col(lon: float) -> int:
        return int((lon + 180) / 360 * 2**z)

    def row(lat: float) -> int:
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)

    west, south, east, north = extent
    every = [
        (z, x, y)
        for x in range(col(west), col(east) + 1)
        for y in range(row(north), row(south) + 1)
    ]
    return sorted(rng.sample(every, min(count, len(every))))


def item_paths(extent, rng: random.Random, boxes: int = 12) -> list[str]:
    """``limit=100`` with a bbox (a quarter of the extent's side) and offsets 0/100/200."""
    west, south, east, north = extent
    w, h = (east - west) / 4, (north - south) / 4
    paths = []
    for _ in range(boxes):
        x, y = west + rng.random() * (east - west - w), south + rng.random() * (north - south - h)
        bbox = f"{x:.5f},{y:.5f},{x + w:.5f},{y + h:.5f}"
        paths += [f"?limit=100&bbox={bbox}&offset={k}" for k in (0, 100, 200)]
    return paths


# -- measuring -------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def tile_latencies(
    servers: dict[str, tuple[str, str]],
    tiles: list[tuple[int, int, int]],
    layer: str,
    headers: dict[str, dict] | None = None,
) -> dict[str, list[float]]:
    """ms per tile per server, alternating; ``servers``: name → (base, template);
    ``headers``: name → headers of that client (an API key).

    The server asking first takes turns: the first to ask for a tile reads its rows
    into PostgreSQL's buffers for the others.
    """
    out: dict[str, list[float]] = {name: [] for name in servers}
    clients = {
        name: httpx.Client(base_url=base, timeout=60, headers=(headers or {}).get(name))
        for name, (base, _) in servers.items()
    }
    try:
        for z, x, y in tiles[:3]:  # warm the connections and the database's caches
            for name, (_, template) in servers.items():
                clients[name].get(template.format(layer=layer, z=z, x=x, y=y))
        names = list(servers)
        for turn, (z, x, y) in enumerate(tiles):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                template = servers[name][1]
                started = time.perf_counter()
                response = clients[name].get(template.format(layer=layer, z=z, x=x, y=y))
                out[name].append((time.perf_counter() - started) * 1e3)
                if response.status_code not in (200, 204):
                    raise SystemExit(f"{name}: {response.status_code} for {z}/{x}/{y}")
    finally:
        for client in clients.values():
            client.close()
    return out


def compare_tiles(
    base: str, tipg_base: str, key: str, extent, rng: random.Random, count: int, rounds: int = 1
) -> list[float]:
    """Part 1: the tile table; the p95 ratios (gridmap / tipg) of its rows.

    Each row's tiles are asked for ``rounds`` times, alternating servers, and the
    times pooled (on a shared machine one stall is the p95 of 30 tiles). gridmap
    keeps no tiles: every answer is made anew (PostgreSQL's buffers are warm for
    both servers). Grids are then asked for once more with a viewer key (incident
    counts and Gi* classes joined), for reference.
    """
    servers = {
        "gridmap": (base, "/tiles/{layer}/{z}/{x}/{y}.mvt"),
        "tipg": (
            tipg_base,
            "/collections/" + SCHEMA + ".{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}",
        ),
    }
    keyed = {"keyed": servers["gridmap"]}
    print(
        f"\ntiles, one at a time, {rounds} round(s) (ms)  gridmap p50 / p95     tipg p50 / p95"
        "    p95 ratio   (with a key: p95)"
    )
    ratios = []
    for layer in LEVELS:
        for z in range(12, 17):
            tiles = tiles_over(extent, z, count, rng)
            times: dict[str, list[float]] = {}
            for _ in range(rounds):
                for name, values in tile_latencies(servers, tiles, layer).items():
                    times.setdefault(name, []).extend(values)
            if layer == "grids":  # after, so that its work does not slow the comparison
                times |= tile_latencies(keyed, tiles, layer, {"keyed": {"X-API-Key": key}})
            ours_t, peer_t = times["gridmap"], times["tipg"]
            ratios.append(percentile(ours_t, 0.95) / percentile(peer_t, 0.95))
            with_key = f"{percentile(times['keyed'], 0.95):7.1f}" if "keyed" in times else ""
            print(
                f"  {layer:<11} z{z}  ({len(tiles):3d} tiles)   "
                f"{statistics.median(ours_t):7.1f} / {percentile(ours_t, 0.95):7.1f}   "
                f"{statistics.median(peer_t):7.1f} / {percentile(peer_t, 0.95):7.1f}   "
                f"{ratios[-1]:6.2f}   {with_key}"
            )
    print(
        f"  p95 ratio over the rows: median {statistics.median(ratios):.2f}, "
        f"worst {max(ratios):.2f} (target <= 1)"
    )
    return ratios


def tiles_only(args, url: str, key: str, uvicorn: Path, extent, rng: random.Random) -> None:
    """Part 1 alone (``--only-tiles``): both servers started for it, nothing else run."""
    tipg_port, port = free_port(), free_port()
    tipg_base, base = f"http://127.0.0.1:{tipg_port}", f"http://127.0.0.1:{port}"
    tipg_cmd = [str(uvicorn), "tipg.main:app", "--port", str(tipg_port), "--log-level", "warning"]
    env = {**gridmap_env(url, True), "GRIDMAP_MAP_WARM_ON_STARTUP": "false"}
    with (
        process(gridmap_command(port), env, ROOT) as ours,
        process(tipg_cmd, tipg_env(url), VENV) as peer,
    ):
        wait_up(base + "/health", ours)
        wait_up(tipg_base + "/collections", peer)
        # the keyed tiles need the incidents loaded and Gi* computed: once, before timing
        httpx.get(base + "/tiles/grids/0/0/0.mvt", headers={"X-API-Key": key}, timeout=900)
        compare_tiles(base, tipg_base, key, extent, rng, args.tiles, args.rounds)


async def _load(base: str, paths: list[str], seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(paths[i % len(paths)])
                latencies.append((time.perf_counter() - started) * 1e3)
                if response.status_code != 200:
                    raise SystemExit(f"{base}{paths[i % len(paths)]}: {response.status_code}")
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"rps": len(latencies) / elapsed, "p95": percentile(latencies, 0.95)}


def items_load(base: str, paths: list[str], seconds: float, concurrency: int = 16) -> dict:
    return asyncio.run(_load(base, paths, seconds, concurrency))


_DRAWN = """() => {
    if (!document.documentElement.hasAttribute("data-gridmap-ready")) { return null; }
    const layers = Object.values(window.gridmap.layers);
    const busy = layers.some(l => l && l._map && typeof l.isLoading === "function"
                                  && l.isLoading());
    return busy ? null : performance.now();
}"""


def render_ms(base: str, key: str, repeat: int) -> float:
    """Median ms from navigation to a drawn page with every shown tile layer loaded."""
    import tempfile

    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            viewport={"width": 1400, "height": 900},
            extra_http_headers={"X-API-Key": key},
        )
        for _ in range(repeat + 1):  # the first load fills the HTTP cache of the assets
            page = context.new_page()
            page.goto(base + "/map", timeout=300_000)
            drawn = None
            deadline = time.monotonic() + 300
            while drawn is None and time.monotonic() < deadline:
                drawn = page.evaluate(_DRAWN)  # polled: the page's CSP forbids eval
                if drawn is None:
                    page.wait_for_timeout(20)
            times.append(drawn)
            page.close()
        context.close()
    return statistics.median(times[1:])


# -- the run ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=40, help="Tiles per zoom and layer.")
    parser.add_argument("--seconds", type=float, default=8.0, help="Seconds per items load.")
    parser.add_argument("--repeat", type=int, default=3, help="Page loads in Chromium.")
    parser.add_argument("--no-browser", action="store_true", help="Skip the Chromium runs.")
    parser.add_argument(
        "--only-tiles", action="store_true", help="Run part 1 (tiles against tipg) alone."
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="Times each tile is asked for (times pooled)."
    )
    parser.add_argument(
        "--only-map",
        action="store_true",
        help="Run the first /map of part 3 alone: first start, restart, restart after a change.",
    )
    args = parser.parse_args()

    from app.config import Settings
    from app.db.provision import ensure_database
    from app.db.session import make_engine
    from app.services.security import create_api_key, list_api_keys, revoke_api_key

    url = ensure_database(Settings())
    engine = make_engine(url)
    gen, label, extent = prepare_views(engine)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                text(
                    "SELECT level, count(*) FROM area WHERE generation_low <= :g "
                    "AND generation_high >= :g GROUP BY level"
                ),
                {"g": gen},
            ).all()
        )
        incidents = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    print(
        f"generation {label!r}: {counts.get('grid', 0):,} grids, "
        f"{counts.get('micro_grid', 0):,} micro-grids, {incidents:,} incidents"
    )
    key = create_api_key(engine, "viewer", "bench_tiles")
    rng = random.Random(0)
    uvicorn = ensure_tipg()
    try:
        run(args, url, key, uvicorn, extent, rng)
    finally:
        for row in list_api_keys(engine):
            if row["name"] == "bench_tiles" and row["revoked_at"] is None:
                revoke_api_key(engine, row["id"])
        engine.dispose()


def run(args, url: str, key: str, uvicorn: Path, extent, rng: random.Random) -> None:
    import tempfile

    if args.only_tiles:
        return tiles_only(args, url, key, uvicorn, extent, rng)
    if args.only_map:
        return map_only(url, key)
    browser = not args.no_browser
    old = page_figures(url, key, gridmap_env(url, False), args.repeat, browser)
    with tempfile.TemporaryDirectory() as pages:
        # a first start builds the page (and keeps it); the restart reads it
        cold = page_figures(url, key, gridmap_env(url, True, Path(pages)), 0, False)
        compare(args, url, key, uvicorn, extent, rng, Path(pages), old, cold)


def compare(args, url, key, uvicorn, extent, rng, pages: Path, old: dict, cold: dict) -> None:
    browser = not args.no_browser
    tipg_port, port = free_port(), free_port()
    tipg_base, base = f"http://127.0.0.1:{tipg_port}", f"http://127.0.0.1:{port}"
    tipg_cmd = [str(uvicorn), "tipg.main:app", "--port", str(tipg_port), "--log-level", "warning"]
    started = time.perf_counter()
    with (
        process(gridmap_command(port), gridmap_env(url, True, pages), ROOT) as ours,
        process(tipg_cmd, tipg_env(url), VENV) as peer,
    ):
        up = wait_up(base + "/health", ours)
        t0 = time.perf_counter()
        response = httpx.get(base + "/map", headers={"X-API-Key": key}, timeout=600)
        new = {
            "first_s": time.perf_counter() - t0,
            "from_start_s": time.perf_counter() - started,
            "up_s": up,
            "bytes": len(response.content),
        }
        wait_up(tipg_base + "/collections", peer)
        if browser and Path(CHROMIUM).exists():
            new["render_ms"] = render_ms(base, key, args.repeat)
        report_page(new, old, cold)
        compare_tiles(base, tipg_base, key, extent, rng, args.tiles, args.rounds)
        paths = item_paths(extent, rng)
        ours_paths = ["/collections/grids/items" + p for p in paths]
        peer_paths = [f"/collections/{SCHEMA}.grids/items" + p for p in paths]
        ours_n = len(httpx.get(base + ours_paths[0]).json()["features"])
        peer_n = len(httpx.get(tipg_base + peer_paths[0]).json()["features"])
        results = {"gridmap": [], "tipg": []}
        for _ in range(2):  # alternate, so both see the same machine
            results["gridmap"].append(items_load(base, ours_paths, args.seconds / 2))
            results["tipg"].append(items_load(tipg_base, peer_paths, args.seconds / 2))
        ours_i = {
            "rps": statistics.mean(r["rps"] for r in results["gridmap"]),
            "p95": max(r["p95"] for r in results["gridmap"]),
        }
        peer_i = {
            "rps": statistics.mean(r["rps"] for r in results["tipg"]),
            "p95": max(r["p95"] for r in results["tipg"]),
        }
        print(
            f"\nOGC items, limit=100, bbox + paging, 16 connections ({ours_n} / {peer_n} "
            "features on the first page)"
        )
        print(
            f"  gridmap {ours_i['rps']:7.1f} req/s, p95 {ours_i['p95']:7.1f} ms   "
            f"tipg {peer_i['rps']:7.1f} req/s, p95 {peer_i['p95']:7.1f} ms   "
            f"throughput ratio {ours_i['rps'] / peer_i['rps']:.2f}, "
            f"p95 ratio {ours_i['p95'] / peer_i['p95']:.2f}"
        )


def page_figures(url: str, key: str, env: dict, repeat: int, browser: bool) -> dict:
    """The page figures of a server started for them alone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with process(gridmap_command(port), env, ROOT) as proc:
        up = wait_up(base + "/health", proc)
        t0 = time.perf_counter()
        response = httpx.get(base + "/map", headers={"X-API-Key": key}, timeout=600)
        figures = {
            "first_s": time.perf_counter() - t0,
            "from_start_s": time.perf_counter() - started,
            "up_s": up,
            "bytes": len(response.content),
        }
        if response.status_code != 200:
            raise SystemExit(f"/map: {response.status_code} {response.text[:300]}")
        if browser and Path(CHROMIUM).exists():
            figures["render_ms"] = render_ms(base, key, repeat)
    return figures


def map_only(url: str, key: str, rounds: int = 3) -> None:
    """The first /map (viewer key) of a server started for it: with nothing kept, after a
    restart on the same data (the page store serves it), and after a restart when one
    incident was added meanwhile (the page must be built; what depends on the areas
    alone is kept). Medians of ``rounds`` restarts each."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        env = gridmap_env(url, True, Path(folder) / "pages")
        first = page_figures(url, key, env, 0, False)
        again = [page_figures(url, key, env, 0, False) for _ in range(rounds)]
        changed = []
        for _ in range(rounds):
            with one_more_incident(url):
                changed.append(page_figures(url, key, env, 0, False))
    print("\nfirst /map (viewer key), s        from /health   from start   server up")
    for name, runs in (
        ("first start, nothing kept", [first]),
        ("restart, same data", again),
        ("restart after a new incident", changed),
    ):
        print(
            f"  {name:<31} {statistics.median(r['first_s'] for r in runs):9.2f}"
            f"   {statistics.median(r['from_start_s'] for r in runs):10.2f}"
            f"   {statistics.median(r['up_s'] for r in runs):9.2f}   (median of {len(runs)})"
        )


@contextmanager
def one_more_incident(url: str) -> Iterator[None]:
    """One incident added while the server is down (a copy of the first one's place and
    assignment), removed afterwards."""
    from app.db.session import make_engine

    engine = make_engine(url)
    external = f"bench-{time.time_ns()}"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "WITH one AS (SELECT * FROM incident_current WHERE grid_code IS NOT NULL "
                    "ORDER BY id LIMIT 1), added AS (INSERT INTO incident (source, external_id, "
                    "category, reported_at, location_status, location) SELECT 'bench', :e, "
                    "category, now(), location_status, location FROM one RETURNING id) "
                    "INSERT INTO incident_assignment (generation_id, incident_id, street_code, "
                    "community_code, grid_code, micro_grid_code, assign_status, distance_m) "
                    "SELECT one.generation_id, added.id, street_code, community_code, grid_code, "
                    "micro_grid_code, assign_status, distance_m FROM one, added"
                ),
                {"e": external},
            )
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE external_id = :e"), {"e": external})
        engine.dispose()


def report_page(new: dict, old: dict, cold: dict) -> None:
    print("\nmap page (viewer key)            tiles page     embedded page    ratio")
    print(
        f"  bytes, assets excluded      {new['bytes'] / 1e6:9.2f} MB   {old['bytes'] / 1e6:9.2f} MB"
        f"   {new['bytes'] / old['bytes']:6.2f}   (target <= 1 MB)"
    )
    print(
        f"  first /map, first start     {cold['first_s']:9.2f} s    {old['first_s']:9.2f} s "
        f"   {cold['first_s'] / old['first_s']:6.2f}   (nothing built yet: data, analyses, page)"
    )
    print(
        f"  first /map after a restart  {new['first_s']:9.2f} s    {old['first_s']:9.2f} s "
        f"   {new['first_s'] / old['first_s']:6.2f}   (target <= 2 s; timed from /health)"
    )
    print(
        f"  first /map from start       {new['from_start_s']:9.2f} s    "
        f"{old['from_start_s']:9.2f} s    {new['from_start_s'] / old['from_start_s']:6.2f}   "
        f"(server up after {new['up_s']:.2f} s / {old['up_s']:.2f} s)"
    )
    if "render_ms" in new and "render_ms" in old:
        print(
            f"  drawn in Chromium           {new['render_ms'] / 1e3:9.2f} s    "
            f"{old['render_ms'] / 1e3:9.2f} s    {new['render_ms'] / old['render_ms']:6.2f}"
            "   (tiles loaded; median)"
        )


if __name__ == "__main__":
    main()
