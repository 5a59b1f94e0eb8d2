"""Load-test the HTTP API on loopback: one ``gridmap serve``, three measurements.

1. Requests/s of ``GET /lookup`` (random points over the active generation)
   as a share of ``GET /health``, a trivial endpoint of the same app, measured
   in alternating rounds so both see the same machine load. Target ≥ 80 %.
2. Latency of ``POST /lookup`` with 10,000 points (client side: request
   encoding, transfer and response included). Target ≤ 200 ms.
3. p95 latency of ``GET /collections/grids/items?bbox=…&limit=100`` for a box
   that matches at least 100 grids, one request at a time. Target ≤ 50 ms.

The client is a minimal asyncio HTTP/1.1 keep-alive client (no third-party
load tool needed); it runs on the same machine, so on a small box it takes
CPU from the server: the ratio in (1) is the meaningful number.

The demo must be loaded (``gridmap demo``). Without ``--url`` the script starts
``gridmap serve`` on a free loopback port (database from GRIDMAP_DATABASE_URL
or the embedded cluster) and stops it at the end.

Examples
--------
    .venv/bin/python benchmarks/bench_api.py
    .venv/bin/python benchmarks/bench_api.py --url http://127.0.0.1:8000 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


# -- a minimal keep-alive HTTP/1.1 client ------------------------------------------------
class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        assert self.reader is not None
        status_line, *headers = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        length = 0
        for line in headers:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def throughput(
    host: str, port: int, paths: list[str], seconds: float, concurrency: int
) -> float:
    """Requests/s over ``concurrency`` connections cycling through ``paths``."""
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(k: int) -> None:
        conn = Connection(host, port)
        i = k
        while time.perf_counter() < deadline:
            status, _ = await conn.request("GET", paths[i % len(paths)])
            if status != 200:
                raise RuntimeError(f"GET {paths[i % len(paths)]} answered {status}")
            counts[k] += 1
            i += concurrency
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return sum(counts) / (time.perf_counter() - start)


async def latencies(
    host: str, port: int, method: str, path: str, n: int, body: bytes = b""
) -> list[float]:
    conn = Connection(host, port)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        status, payload = await conn.request(method, path, body)
        out.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}: {payload[:200]!r}")
    conn.close()
    return out


async def get_json(host: str, port: int, path: str) -> dict:
    conn = Connection(host, port)
    status, payload = await conn.request("GET", path)
    conn.close()
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {payload[:300]!r}")
    return json.loads(payload)


# -- the three measurements --------------------------------------------------------------
def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)


async def run(host: str, port: int, args: argparse.Namespace) -> dict:
    grids = await get_json(host, port, "/collections/grids")
    minx, miny, maxx, maxy = grids["extent"]["spatial"]["bbox"][0]
    rng = random.Random(args.seed)
    points = [(rng.uniform(minx, maxx), rng.uniform(miny, maxy)) for _ in range(10_000)]
    lookup_paths = [f"/lookup?lon={x:.6f}&lat={y:.6f}" for x, y in points[:2000]]
    results: dict = {}

    # 1. lookup vs trivial, alternating rounds
    await throughput(host, port, ["/health"], 1.0, args.concurrency)  # warm-up
    await throughput(host, port, lookup_paths, 1.0, args.concurrency)
    trivial, lookup = [], []
    for _ in range(args.rounds):
        trivial.append(await throughput(host, port, ["/health"], args.seconds, args.concurrency))
        lookup.append(await throughput(host, port, lookup_paths, args.seconds, args.concurrency))
    results["health_rps"] = statistics.median(trivial)
    results["lookup_rps"] = statistics.median(lookup)
    results["lookup_share"] = statistics.median(
        [a / b for a, b in zip(lookup, trivial, strict=True)]
    )

    # 2. POST /lookup with 10,000 points
    body = json.dumps({"lon": [p[0] for p in points], "lat": [p[1] for p in points]}).encode()
    await latencies(host, port, "POST", "/lookup", 2, body)
    post = await latencies(host, port, "POST", "/lookup", args.post_requests, body)
    results["post_10k_median_ms"] = statistics.median(post) * 1e3
    results["post_10k_p95_ms"] = p95(post) * 1e3

    # 3. /collections/grids/items with a bbox matching >= 100 grids
    bbox = await _bbox_with(host, port, 100, (minx, miny, maxx, maxy))
    path = f"/collections/grids/items?bbox={bbox}&limit=100"
    page = await get_json(host, port, path)
    results["items_bbox"] = bbox
    results["items_returned"] = page["numberReturned"]
    await latencies(host, port, "GET", path, 5)
    items = await latencies(host, port, "GET", path, args.items_requests)
    results["items_median_ms"] = statistics.median(items) * 1e3
    results["items_p95_ms"] = p95(items) * 1e3
    return results


async def _bbox_with(host: str, port: int, wanted: int, extent: tuple) -> str:
    """A box around the centre of the extent, grown until it matches ``wanted`` grids."""
    minx, miny, maxx, maxy = extent
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = 0.002
    while True:
        bbox = f"{cx - half:.5f},{cy - half:.5f},{cx + half:.5f},{cy + half:.5f}"
        page = await get_json(host, port, f"/collections/grids/items?bbox={bbox}&limit=1")
        if page["numberMatched"] >= wanted or half > (maxx - minx):
            return bbox
        half *= 1.15


# -- the server ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    gridmap = Path(sys.executable).with_name("gridmap")
    command = (
        [str(gridmap)]
        if gridmap.exists()
        else [sys.executable, "-c", "from app.cli import main; main()"]
    )
    env = {**os.environ, "GRIDMAP_INDEX_REFRESH_SECONDS": "0"}
    server = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gridmap serve exited with {server.returncode}")
        try:
            health = asyncio.run(get_json("127.0.0.1", port, "/health"))
            if health["status"] != "ok":
                raise SystemExit("the server has no active generation: run `gridmap demo`")
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gridmap serve did not come up within 300 s")


def report(results: dict) -> None:
    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    share = results["lookup_share"]
    print(f"GET /health                      {results['health_rps']:8.0f} req/s")
    print(
        f"GET /lookup                      {results['lookup_rps']:8.0f} req/s  "
        f"= {share:.0%} of /health (target >= 80 %: {verdict(share >= 0.8)})"
    )
    post = results["post_10k_median_ms"]
    print(
        f"POST /lookup, 10,000 points      median {post:6.1f} ms, p95 "
        f"{results['post_10k_p95_ms']:6.1f} ms (target <= 200 ms: {verdict(post <= 200)})"
    )
    items = results["items_p95_ms"]
    print(
        f"GET /collections/grids/items     {results['items_returned']} grids, median "
        f"{results['items_median_ms']:5.1f} ms, p95 {items:5.1f} ms "
        f"(target <= 50 ms: {verdict(items <= 50)})  bbox={results['items_bbox']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="A running gridmap (default: start one).")
    parser.add_argument("--seconds", type=float, default=2.0, help="Length of one round.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of each endpoint.")
    parser.add_argument("--concurrency", type=int, default=8, help="Connections.")
    parser.add_argument("--post-requests", type=int, default=20)
    parser.add_argument("--items-requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    server = None
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
    else:
        host, port = "127.0.0.1", free_port()
        server = start_server(port)
    try:
        report(asyncio.run(run(host, port, args)))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
