"""The accepted time range: one definition for the API, the imports and the analyses.

Reports happen between :data:`EARLIEST` and a day after now (clocks of reporting
channels drift; a day of slack refuses only real mistakes). Windows of a query
(``start``/``end``/``datetime``) start no earlier and may reach into the future, up to
:data:`LATEST_WINDOW`, as long as the instant exists in UTC.
Bounding both keeps every stored and compared time inside what pandas' nanosecond
timestamps and PostgreSQL's ``timestamptz`` hold, so one bad value (``0001-01-01``,
``9999-12-31``) can never break the analyses of everyone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

__all__ = [
    "EARLIEST",
    "FUTURE_SLACK",
    "LATEST_WINDOW",
    "latest_report",
    "report_time_problem",
    "window_time_problem",
]

#: No report, and no window bound, is earlier than this.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
#: How far after now a report time may lie.
FUTURE_SLACK = timedelta(days=1)
#: No window bound is later than this: ``../9999-12-31`` is how clients say "open end".
LATEST_WINDOW = datetime.max.replace(tzinfo=UTC)


def latest_report(now: datetime | None = None) -> datetime:
    """The latest accepted report time: now plus :data:`FUTURE_SLACK`."""
    return (now or datetime.now(UTC)) + FUTURE_SLACK


def report_time_problem(moment: Any, now: datetime | None = None) -> str | None:
    """Why ``moment`` (aware datetime or Timestamp) is no report time, or None when it is."""
    return _range_problem(moment, "reported time", latest_report(now))


def window_time_problem(moment: Any, name: str = "time") -> str | None:
    """Why ``moment`` is no bound of a query window, or None when it is."""
    return _range_problem(moment, name, LATEST_WINDOW)


def _range_problem(moment: Any, name: str, latest: datetime) -> str | None:
    try:
        instant = _utc(moment)
    except (OverflowError, ValueError, TypeError):
        instant = None
    if instant is not None and EARLIEST <= instant <= latest:
        return None
    return (
        f"{name} {_show(moment)} out of range: "
        f"accepted from {EARLIEST:%Y-%m-%d} to {latest:%Y-%m-%d %H:%M} UTC"
    )


def _utc(moment: Any) -> datetime:
    if isinstance(moment, pd.Timestamp):
        # Outside datetime's years the year alone decides (pandas holds year 0 and -1).
        if not 1 <= moment.year <= 9999:
            raise OverflowError(moment.year)
        moment = moment.to_pydatetime()
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise TypeError("an aware datetime is needed")
    return moment.astimezone(UTC)


def _show(moment: Any) -> str:
    try:
        return moment.isoformat()
    except (AttributeError, ValueError, OverflowError, NotImplementedError):
        pass
    try:  # a pandas Timestamp beyond datetime's years cannot even be printed
        return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    except (AttributeError, ValueError, TypeError):
        return "(unprintable)"
