"""Reading incident rows from ``.xlsx``: gridmap's reader vs ``pandas.read_excel(openpyxl)``.

Offices send 12345 hotline archives as workbooks of 100,000 rows and more.
``gis.tables.read_table`` reads them with python-calamine (Rust) and turns every
cell into the text a user typed; the peer is what most code does,
``pandas.read_excel(engine="openpyxl", dtype=str)``. Both read the same file in
the same run, alternately, best of ``--repeat``; the ratio is printed. Both must
give the same text for the id and category columns (checked).

Examples
--------
    .venv/bin/python benchmarks/bench_xlsx.py                 # 100,000 rows
    .venv/bin/python benchmarks/bench_xlsx.py --rows 10000 --repeat 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis.tables import read_table, write_table  # noqa: E402

CATEGORIES = ["井盖缺失", "道路破损", "乱停乱放", "占道经营", "飞线充电", "噪音扰民"]
STATUSES = ["上报", "立案", "派遣", "处置", "核查", "结案"]


def incident_rows(n: int, seed: int = 411002) -> pd.DataFrame:
    """Hotline-like tickets: text ids and phones, coordinates, times, Chinese words."""
    rng = np.random.default_rng(seed)
    reported = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 86400, n), "s")
    return pd.DataFrame(
        {
            "工单编号": [f"GD{i:08d}" for i in range(n)],
            "经度": np.round(113.8 + rng.random(n) * 0.1, 6),
            "纬度": np.round(34.0 + rng.random(n) * 0.1, 6),
            "上报时间": reported.strftime("%Y-%m-%d %H:%M:%S"),
            "问题类型": rng.choice(CATEGORIES, n),
            "办理状态": rng.choice(STATUSES, n),
            "联系电话": [f"138{x:08d}" for x in rng.integers(0, 10**8, n)],
            "地址": [f"魏都区建设路{x}号" for x in rng.integers(1, 500, n)],
        }
    )


def timed(read) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    frame = read()
    return time.perf_counter() - start, frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "incidents.xlsx"
        start = time.perf_counter()
        write_table(incident_rows(args.rows), path)
        print(f"wrote {args.rows:,} rows to .xlsx in {time.perf_counter() - start:.1f} s")

        ours, theirs = float("inf"), float("inf")
        ours_frame = theirs_frame = None
        for _ in range(args.repeat):  # alternate, so both see the same machine load
            t, ours_frame = timed(lambda: read_table(path)[0])
            ours = min(ours, t)
            t, theirs_frame = timed(lambda: pd.read_excel(path, engine="openpyxl", dtype=str))
            theirs = min(theirs, t)
        assert ours_frame is not None and theirs_frame is not None
        assert len(ours_frame) == len(theirs_frame) == args.rows
        for column in ("工单编号", "问题类型", "联系电话"):
            assert ours_frame[column].tolist() == theirs_frame[column].tolist(), column

    print(f"gis.tables.read_table (python-calamine): {ours:.2f} s")
    print(f"pandas.read_excel(engine='openpyxl'):    {theirs:.2f} s")
    print(f"ratio openpyxl / gridmap: {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
