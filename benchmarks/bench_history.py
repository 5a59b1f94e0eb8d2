"""Checking historical tickets against the closed loop: a column at a time vs row by row.

An archive's tickets come with their status, handling level and step times
(``gis.incidents.FieldMap``'s history fields); every row is checked against the
loop's rules before it is stored. ``gis.incidents._HistoryCheck`` applies the
rules a column at a time; the peer is the row function ``_ticket`` the import
used to call for every row. Both check the same rows (the demo's history as
text, as an export writes it) in the same run, alternately; the row function
on a sample only (a million rows take it minutes), scaled per row. Both must
give every row the same reason (checked on the sample).

    .venv/bin/python benchmarks/bench_history.py                   # 200,000 rows
    .venv/bin/python benchmarks/bench_history.py --rows 50000 --sample 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.services.demo import DEMO_FIELDS, _incident_text  # noqa: E402
from gis.demo import build_demo  # noqa: E402
from gis.incidents import _HistoryCheck, _parse_times, _ticket  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sample", type=int, default=20_000, help="rows the peer checks")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    raw = _incident_text(build_demo(n_incidents=args.rows).incidents)
    reported, _ = _parse_times(raw["reported_at"])
    sample = raw.iloc[: args.sample].reset_index(drop=True)
    columns, rows = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        problems = _HistoryCheck(raw, DEMO_FIELDS, reported).problems()
        columns.append(time.perf_counter() - started)
        started = time.perf_counter()
        expected = [_ticket(sample, DEMO_FIELDS, i, reported.iat[i])[1] for i in range(len(sample))]
        rows.append((time.perf_counter() - started) * len(raw) / len(sample))
    assert list(problems[: len(sample)]) == expected, "the two checks disagree"
    column_s, row_s = statistics.median(columns), statistics.median(rows)
    print(f"{len(raw):,} tickets, median of {args.repeat}:")
    print(f"  a column at a time (_HistoryCheck) {column_s:8.2f} s")
    print(f"  row by row (_ticket, {len(sample):,} rows scaled) {row_s:8.2f} s")
    print(f"  ratio row / column: {row_s / column_s:.0f}x")


if __name__ == "__main__":
    main()
