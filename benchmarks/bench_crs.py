"""Throughput of gis.crs conversions, with reference libraries timed in the same run.

Run it from the repository root::

    python benchmarks/bench_crs.py                  # 1M and 5M points, 5 runs each
    python benchmarks/bench_crs.py --sizes 200000 --repeat 3

For each direction it converts random points spread uniformly over China and
prints the median throughput. The peers are:

* ``coordTransform`` (PyPI, C extension with a batch API that returns lists):
  the fastest peer found. Its three inverses are the one-step approximations,
  metres off, so the ratio flatters it there. The accuracy columns show this.
* ``prcoords`` (PyPI, pure Python, one point per call, iterated inverses): the
  reference the tests check against. It is timed on a subsample, because a
  Python loop's rate per point does not depend on the size.

Everything runs on one core. The thread-count variables are pinned to 1 before
NumPy loads. The NumPy ufuncs and shapely's ``contains_xy`` used here are
single-threaded anyway. Rates are points per second of wall time, with points
per CPU second of this process in brackets. On a core of our own the two agree
(cpu/wall ≈ 1.0). A cpu/wall well below 1 means other processes competed for
the core, and the CPU-time rate is then the better estimate. A value above 1
would mean more than one thread. Ratios are gis.crs over the peer, from wall
time.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy is imported

import argparse  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib import metadata  # noqa: E402

import numpy as np  # noqa: E402

from gis import crs  # noqa: E402

try:  # optional peers: the benchmark still runs without them
    import coordTransform
except ImportError:  # pragma: no cover - depends on the environment
    coordTransform = None
try:
    import prcoords
except ImportError:  # pragma: no cover
    prcoords = None

CHINA_BOUNDS = (73.5, 17.9, 134.8, 53.6)


@dataclass(frozen=True)
class Direction:
    src: str  # "wgs84", "gcj02" or "bd09": which sample the conversion starts from
    dst: str
    ref: str  # prcoords function; the iterated ("bored") inverses for accuracy

    @property
    def label(self) -> str:
        return f"{self.src} → {self.dst}"

    @property
    def name(self) -> str:  # gis.crs and coordTransform use the same function names
        return f"{self.src}_to_{self.dst}"

    @property
    def inverse(self) -> bool:
        order = ("wgs84", "gcj02", "bd09")
        return order.index(self.src) > order.index(self.dst)


DIRECTIONS = (
    Direction("wgs84", "gcj02", "wgs_gcj"),
    Direction("gcj02", "wgs84", "gcj_wgs_bored"),
    Direction("gcj02", "bd09", "gcj_bd"),
    Direction("bd09", "gcj02", "bd_gcj_bored"),
    Direction("wgs84", "bd09", "wgs_bd"),
    Direction("bd09", "wgs84", "bd_wgs_bored"),
)


@dataclass(frozen=True)
class Timing:
    wall: float  # median seconds
    cpu: float  # median CPU seconds of this process

    def rate(self, n: int) -> float:
        """Points per second of wall time."""
        return n / self.wall

    def cpu_rate(self, n: int) -> float:
        """Points per CPU second: what one idle core would do, if others compete for it."""
        return n / self.cpu

    @property
    def share(self) -> float:
        """CPU time / wall time: ~1.0 on a core of our own, < 1 if we had to wait for it."""
        return self.cpu / self.wall


def measure(run: Callable[[], object], repeat: int) -> Timing:
    """Median wall and CPU time of `repeat` calls, with the GC paused as timeit does."""
    walls, cpus = [], []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            run()
            walls.append(time.perf_counter() - wall0)
            cpus.append(time.process_time() - cpu0)
    finally:
        gc.enable()
    return Timing(statistics.median(walls), statistics.median(cpus))


def china_points(n: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`n` random points inside China, in each of WGS84, GCJ-02 and BD-09.

    Points are kept only if they are inside China in all three systems, and
    south of 53.5° N where coordTransform's rectangle ends. That way every
    library shifts every point.
    """
    rng = np.random.default_rng(seed)
    lon = np.empty(0)
    lat = np.empty(0)
    while lon.size < n:  # rejection sampling: about 45 % of the box is China
        x = rng.uniform(CHINA_BOUNDS[0], CHINA_BOUNDS[2], n)
        y = rng.uniform(CHINA_BOUNDS[1], CHINA_BOUNDS[3], n)
        keep = crs.in_china(x, y) & (y < 53.5)
        keep &= crs.in_china(*crs.wgs84_to_gcj02(x, y)) & crs.in_china(*crs.wgs84_to_bd09(x, y))
        lon, lat = np.concatenate([lon, x[keep]]), np.concatenate([lat, y[keep]])
    lon, lat = lon[:n], lat[:n]
    return {
        "wgs84": (lon, lat),
        "gcj02": crs.wgs84_to_gcj02(lon, lat),
        "bd09": crs.wgs84_to_bd09(lon, lat),
    }


def max_error_m(lon, lat, ref_lon, ref_lat) -> float:
    """Largest ground distance between two point sets, in metres (small separations)."""
    mid = np.radians((np.asarray(lat) + np.asarray(ref_lat)) / 2)
    dx = np.radians(np.asarray(lon) - np.asarray(ref_lon)) * np.cos(mid)
    dy = np.radians(np.asarray(lat) - np.asarray(ref_lat))
    return float(np.nanmax(6_371_000.0 * np.hypot(dx, dy)))


def prcoords_call(name: str, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prcoords converts one (lat, lon) at a time; loop the way a caller would."""
    fn = getattr(prcoords, name)
    # The WGS84-side functions take check_china; False skips its rectangle test
    # and its warning, because every sample point is in China anyway.
    args = (False,) if name in ("wgs_gcj", "wgs_bd", "gcj_wgs_bored", "bd_wgs_bored") else ()
    out = [fn((b, a), *args) for a, b in zip(lon.tolist(), lat.tolist(), strict=True)]
    arr = np.array(out)
    return arr[:, 1], arr[:, 0]


def fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:8.2f} M/s" if rate >= 1e5 else f"{rate / 1e3:8.1f} k/s"


def bench_size(n: int, repeat: int, seed: int) -> None:
    points = china_points(n, seed)
    print(f"\n== {n:,} points in China, median of {repeat} runs, 1 thread ==")
    head = f"{'direction':15s} {'gis.crs wall':>13s} {'(cpu)':>11s} {'cpu/wall':>8s}"
    if coordTransform is not None:
        head += f" {'coordTransform':>14s} {'(cpu)':>11s} {'ratio':>6s}"
    print(head)
    for d in DIRECTIONS:
        lon, lat = points[d.src]
        ours = measure(lambda d=d, lon=lon, lat=lat: getattr(crs, d.name)(lon, lat), repeat)
        line = (
            f"{d.label:15s} {fmt_rate(ours.rate(n)):>13s} {fmt_rate(ours.cpu_rate(n)):>11s}"
            f" {ours.share:8.2f}"
        )
        if coordTransform is not None:
            fn = getattr(coordTransform, d.name)
            theirs = measure(lambda fn=fn, lon=lon, lat=lat: fn(lon, lat), repeat)
            line += (
                f" {fmt_rate(theirs.rate(n)):>14s} {fmt_rate(theirs.cpu_rate(n)):>11s}"
                f" {ours.rate(n) / theirs.rate(n):6.2f}"
            )
        print(line, flush=True)
    mask = measure(lambda: crs.in_china(*points["wgs84"]), repeat)
    forward = measure(lambda: crs.wgs84_to_gcj02(*points["wgs84"]), repeat)
    print(
        f"{'in_china alone':15s} {fmt_rate(mask.rate(n)):>13s} {fmt_rate(mask.cpu_rate(n)):>11s}"
        f"   ({mask.cpu / forward.cpu:.0%} of the CPU time of wgs84 → gcj02)"
    )


def bench_reference(n: int, repeat: int, seed: int) -> None:
    points = china_points(n, seed)
    print(f"\n== prcoords (pure Python, per point): {n:,} points, median of {repeat} runs ==")
    print(f"{'direction':15s} {'gis.crs wall':>13s} {'prcoords':>11s} {'ratio':>8s}")
    for d in DIRECTIONS:
        lon, lat = points[d.src]
        ours = measure(lambda d=d, lon=lon, lat=lat: getattr(crs, d.name)(lon, lat), repeat)
        ref = measure(lambda d=d, lon=lon, lat=lat: prcoords_call(d.ref, lon, lat), repeat)
        print(
            f"{d.label:15s} {fmt_rate(ours.rate(n)):>13s} {fmt_rate(ref.rate(n)):>11s}"
            f" {ours.rate(n) / ref.rate(n):8.0f}",
            flush=True,
        )


def accuracy(n: int, seed: int) -> None:
    """Round-trip error of each inverse (back through gis.crs's forward), in metres."""
    points = china_points(n, seed)
    print(f"\n== accuracy of the inverses on {n:,} points: max error in metres ==")
    print(f"{'direction':15s} {'gis.crs':>10s} {'coordTransform':>15s} {'prcoords':>10s}")
    for d in DIRECTIONS:
        if not d.inverse:
            continue
        lon, lat = points[d.src]
        truth = points[d.dst]
        cells = [f"{max_error_m(*getattr(crs, d.name)(lon, lat), *truth):10.1e}"]
        if coordTransform is not None:
            got = getattr(coordTransform, d.name)(lon, lat)
            cells.append(f"{max_error_m(np.array(got[0]), np.array(got[1]), *truth):15.1e}")
        if prcoords is not None:
            m = min(n, 20_000)
            got = prcoords_call(d.ref, lon[:m], lat[:m])
            cells.append(f"{max_error_m(*got, truth[0][:m], truth[1][:m]):10.1e}")
        print(f"{d.label:15s} " + " ".join(cells))


def describe_environment() -> None:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, shapely "
          f"{version('shapely')}, coordTransform {version('coordTransform')}, "
          f"prcoords {version('prcoords')}")  # fmt: skip
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"CPU: {cpu}; {os.cpu_count()} logical CPUs; load average {load[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    parser.add_argument(
        "--ref-points", type=int, default=20_000, help="points for the prcoords Python loop"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    describe_environment()
    crs.in_china(116.4, 39.9)  # build the China raster outside the timings
    for n in args.sizes:
        bench_size(n, args.repeat, args.seed)
    if prcoords is not None:
        bench_reference(args.ref_points, min(args.repeat, 3), args.seed)
    accuracy(min(args.sizes), args.seed)


if __name__ == "__main__":
    main()
