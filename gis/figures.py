"""The statistics report's figures added up from counted *cells* (pure pandas and NumPy).

A cell is a group of incidents counted together: the monthly rollup stores one per
(generation, month, street, community, grid, assignee), and the edges of a window
not made of whole stored months are counted live, one cell per (report row, month,
in the report window or not). Each cell carries its counts, and per incident what
the counts cannot carry:

- every closed incident's hours from report to close, for the exact medians (a
  median does not add up: it needs the values);
- every open incident's deadline, for *overdue*, which depends on the moment asked:
  an open incident is overdue once its deadline has passed.

:func:`add_up` turns the cells into the report rows, the months of the trend and
their medians. The medians are PostgreSQL's ``percentile_cont(0.5)`` to the last bit
(:func:`sorted_medians`), so the figures equal those of a count written in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gis.vocabulary import HANDLING_LEVELS

#: Per-row totals of a report, besides ``code``.
TOTAL_COLUMNS = (
    "received",
    *(f"handled_{level}" for level in HANDLING_LEVELS),
    "overdue",
    "on_time",
    "median_close_hours",
)
#: The counts a cell carries, besides one per source (``source:<source>``) and per major
#: class (``class:<major>``). *Overdue* is not one of them: ``late_settled`` (handled after
#: the deadline, no longer open) and ``open_late`` (open again, handled late before) are
#: overdue whenever asked; an open incident otherwise only once its deadline has passed.
CELL_COUNTS = (
    "received",
    *(f"handled_{level}" for level in HANDLING_LEVELS),
    "on_time",
    "late_settled",
    "open_late",
    "unclassified",
)
SOURCE, CLASS = "source:", "class:"
#: The counts shown as they are (``overdue`` is made of two more and the deadlines).
_SHOWN = (*(c for c in TOTAL_COLUMNS if c not in ("overdue", "median_close_hours")),)


@dataclass
class Figures:
    """The figures of one report and of its monthly trend.

    ``totals``: per row code, :data:`TOTAL_COLUMNS`, a count per source
    (``source:<source>``) and per major class (``class:<major>``, and ``unclassified``),
    then a last row with code None holding the median of all rows (a median does not add
    up; the counts do). ``months``: per month (``code``, ``YYYY-MM``) of the cells,
    :data:`TOTAL_COLUMNS`. Only rows and months holding incidents are listed.
    """

    totals: pd.DataFrame
    months: pd.DataFrame


@dataclass
class Cells:
    """Cells counted, with what their medians and overdue counts need.

    ``row``: per cell, the number (in the caller's list of keys) of the report row it
    counts for, -1 for none (an incident outside every grid, or dispatched to no one of
    the roster); ``month``: the number of its report month, -1 for no report time;
    ``in_report``: whether it lies in the report window (the trend counts every cell).
    ``counts``: per count name (:data:`CELL_COUNTS`, ``source:<source>``,
    ``class:<major>``) its value per cell. ``closed_cell`` / ``closed_hours``: per closed
    incident its cell and hours to close; ``open_cell`` / ``open_due``: per open incident
    not yet known late, its cell and deadline (``datetime64[us]``, UTC).
    """

    row: np.ndarray
    month: np.ndarray
    in_report: np.ndarray
    counts: dict[str, np.ndarray]
    closed_cell: np.ndarray
    closed_hours: np.ndarray
    open_cell: np.ndarray
    open_due: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    @staticmethod
    def concat(parts: Sequence[Cells]) -> Cells:
        """One set of cells from several: their cell numbers shifted, their counts matched by
        name (a count a part lacks is 0 there)."""
        offsets = np.cumsum([0, *(len(p) for p in parts)])[:-1]
        names = list(dict.fromkeys(name for p in parts for name in p.counts))
        counts = {
            name: _joined([p.counts.get(name, np.zeros(len(p), np.int64)) for p in parts], np.int64)
            for name in names
        }
        shifted = list(zip(parts, offsets, strict=True))
        return Cells(
            row=_joined([p.row for p in parts], np.int64),
            month=_joined([p.month for p in parts], np.int64),
            in_report=_joined([p.in_report for p in parts], np.bool_),
            counts=counts,
            closed_cell=_joined([p.closed_cell + o for p, o in shifted], np.int64),
            closed_hours=_joined([p.closed_hours for p in parts], np.float64),
            open_cell=_joined([p.open_cell + o for p, o in shifted], np.int64),
            open_due=_joined([p.open_due for p in parts], "datetime64[us]"),
        )


def _joined(arrays: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.empty(0, dtype)


def add_up(
    cells: Cells,
    keys: Sequence[str],
    months: Sequence[str],
    now: np.datetime64,
    sources: Sequence[str],
    majors: Sequence[str],
) -> Figures:
    """The report rows (the cells in the report window that have a row), every month of
    the cells (the trend; the caller keeps the months it shows) and their medians, overdue
    judged at ``now``. ``keys`` and ``months`` label the cells' ``row`` and ``month``."""
    summed = _summed(cells, now, sources, majors)
    hours = _Hours(cells)
    in_rows = cells.in_report & (cells.row >= 0)
    rows = _groups(summed, cells.row, in_rows, keys, hours.medians(cells.row, in_rows, len(keys)))
    dated = cells.month >= 0
    per_month = _groups(
        summed, cells.month, dated, months, hours.medians(cells.month, dated, len(months))
    )
    overall = hours.medians(np.zeros(len(cells), np.int64), in_rows, 1)[0]
    last = pd.DataFrame(
        {"code": pd.Series([None], dtype=rows["code"].dtype), "median_close_hours": [overall]}
    )
    return Figures(
        totals=pd.concat([rows, last], ignore_index=True),
        months=per_month[["code", *TOTAL_COLUMNS]],
    )


def _summed(
    cells: Cells, now: np.datetime64, sources: Sequence[str], majors: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per cell what is summed: the report's counts, overdue at ``now`` among them."""
    late_now = cells.open_due < now
    open_overdue = np.bincount(cells.open_cell[late_now], minlength=len(cells))

    def count(name: str) -> np.ndarray:
        return cells.counts.get(name, np.zeros(len(cells), np.int64))

    summed = {name: count(name) for name in _SHOWN}
    summed["overdue"] = count("late_settled") + count("open_late") + open_overdue
    for name in (*(f"{SOURCE}{s}" for s in sources), *(f"{CLASS}{m}" for m in majors)):
        summed[name] = count(name)
    summed["unclassified"] = count("unclassified")
    return summed


def _groups(
    summed: dict[str, np.ndarray],
    group: np.ndarray,
    keep: np.ndarray,
    labels: Sequence[str],
    medians: np.ndarray,
) -> pd.DataFrame:
    """Per group holding a cell kept: its label (``code``), each sum, the median."""
    by, size = group[keep], len(labels)
    frame = pd.DataFrame(
        {
            name: np.bincount(by, weights=values[keep], minlength=size).astype(np.int64)
            for name, values in summed.items()
        }
    )
    frame.insert(0, "code", pd.Series(list(labels), dtype=str if labels else object))
    frame["median_close_hours"] = medians
    held = np.bincount(by, minlength=size) > 0
    columns = ["code", *TOTAL_COLUMNS, *(c for c in frame if c not in ("code", *TOTAL_COLUMNS))]
    return frame.loc[held, columns].reset_index(drop=True)


class _Hours:
    """The cells' hours to close sorted once, for medians of any grouping of the cells."""

    def __init__(self, cells: Cells):
        # Each stored month's hours come sorted: the stable sort merges those runs.
        order = np.argsort(cells.closed_hours, kind="stable")
        self.values = cells.closed_hours[order]
        self.cell = cells.closed_cell[order]

    def medians(self, group: np.ndarray, keep: np.ndarray, size: int) -> np.ndarray:
        """The median hours to close per group (0 … size-1) of the cells kept (NaN: none)."""
        taken = keep[self.cell]
        return sorted_medians(group[self.cell[taken]], self.values[taken], size)


def sorted_medians(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group 0 … size-1, PostgreSQL's ``percentile_cont(0.5)`` of its ``values``, which
    come sorted (NaN: no value).

    Bit for bit: with the group's n values in order, the one at (n-1)/2 when n is odd,
    else ``lo + 0.5 * (hi - lo)`` of the two middle ones (PostgreSQL's float8 lerp), not
    ``(lo + hi) / 2``, which may round the other way. A stable sort by group keeps each
    group's values in order (a radix sort while the groups fit in 16 bits).
    """
    result = np.full(size, np.nan)
    if len(values) == 0:
        return result
    narrow = np.uint16 if size <= np.iinfo(np.uint16).max else np.int64
    ordered = values[np.argsort(groups.astype(narrow), kind="stable")]
    n = np.bincount(groups, minlength=size)
    start = np.cumsum(n) - n
    present = np.flatnonzero(n)
    k = n[present]
    lo = ordered[start[present] + (k - 1) // 2]
    hi = ordered[start[present] + k // 2]
    result[present] = np.where(k % 2 == 1, lo, lo + 0.5 * (hi - lo))
    return result
