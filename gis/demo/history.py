"""Where each demo incident got to in the closed loop, and when (private helper).

A city's archive holds its tickets with their history; so does the demo. Each
incident is handled at a level — the grid, else the community, else the street,
in the proportions of the source articles (Zhongyuan district, Zhengzhou: of
412 events 335 were handled in the grid and 77 passed up) — after a time drawn
relative to its category's deadline: most in time, about one in ten late, the
ones passed up later and with a longer tail (more hands, more waiting). It is
registered and dispatched on the way, verified hours after it was handled and
closed soon after.

The history is cut at the end of the demo's period: a step not reached by then
has not happened. Towards the end more and more tickets are still open besides
(waiting to be registered, dispatched, handled, verified or closed), so the
console has live work, and those open past their deadline are overdue.

Every number is drawn for all incidents at once from the demo's seeded stream,
in a fixed order: the same seed gives the same history.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from gis.errors import GridmapError
from gis.incidents import HISTORY_COLUMNS, STEP_COLUMNS
from gis.vocabulary import HANDLING_LEVELS, INCIDENT_STATUSES

__all__ = ["LEVEL_SHARE", "LATE_SHARE", "build_history"]

#: Handled in the grid, the community, the street (Zhongyuan: 335 of 412 in the grid).
LEVEL_SHARE = np.array([0.80, 0.15, 0.05])
#: Time from report to handled as a share of the category's deadline, per level: the
#: median, and the share handled after the deadline (overall ~9 %).
_MEDIAN_SHARE = np.array([0.35, 0.40, 0.45])
LATE_SHARE = np.array([0.07, 0.16, 0.28])
#: The log-normal through both: ln(median) / z(late) — 0.71, 0.92, 1.37, the tails of
#: what was passed up heavier.
_SIGMA = np.log(_MEDIAN_SHARE) / np.array([NormalDist().inv_cdf(p) for p in LATE_SHARE])
#: Registration, then dispatch, take these shares (uniform between) of the time to handling.
_REGISTER_SHARE = (0.05, 0.20)
_DISPATCH_SHARE = (0.05, 0.25)
#: Verification a few hours after handling, closing an hour or so after that (median
#: seconds, log-normal spread).
_VERIFY = (3 * 3600, 0.8)
_CLOSE = (3600, 1.0)
#: Nothing takes longer than this from report to handled (the log-normal's far tail).
_LONGEST_S = 60 * 86400
_MINUTE = 60
#: A ticket reported ``age`` days before the period's end is still held at some step
#: with probability OPEN_NEAR_END · exp(-age / OPEN_DAYS): ~1.6 % of a year's tickets.
OPEN_NEAR_END = 0.6
OPEN_DAYS = 10.0
#: The step such a ticket waits at: reported, registered, dispatched, handled, verified.
_HELD_AT = np.array([0.20, 0.20, 0.35, 0.15, 0.10])


def build_history(
    rng: np.random.Generator,
    reported_at: pd.Series,
    category: pd.Series,
    end: pd.Timestamp,
    deadline_hours: dict[str, int],
) -> pd.DataFrame:
    """Status, handling level and step times (``gis.incidents.HISTORY_COLUMNS``) of each
    incident as of ``end`` (aware), aligned with ``reported_at`` (aware, before ``end``).

    Step times are whole seconds in the time zone of ``reported_at``, NaT for steps not
    reached; ``handling_level`` is None until the ticket is registered.
    """
    n = len(reported_at)
    hours = pd.Series(category).map(deadline_hours).to_numpy(dtype=float)
    if np.isnan(hours).any():
        missing = sorted(set(pd.Series(category)[np.isnan(hours)].astype(str)))
        raise GridmapError(f"no deadline for the demo's categories {', '.join(missing)}")
    reported = pd.DatetimeIndex(reported_at).as_unit("s").asi8
    end_s = int(pd.Timestamp(end).timestamp())

    level = rng.choice(len(HANDLING_LEVELS), size=n, p=LEVEL_SHARE)
    share = np.exp(np.log(_MEDIAN_SHARE[level]) + _SIGMA[level] * rng.standard_normal(n))
    to_handled = np.clip(share * hours * 3600, 10 * _MINUTE, _LONGEST_S)
    register = to_handled * rng.uniform(*_REGISTER_SHARE, n)
    dispatch = to_handled * rng.uniform(*_DISPATCH_SHARE, n)
    verify = _lognormal(rng, *_VERIFY, n)
    close = _lognormal(rng, *_CLOSE, n)
    held = rng.random(n) < OPEN_NEAR_END * np.exp(-(end_s - reported) / 86400 / OPEN_DAYS)
    held_at = rng.choice(len(_HELD_AT), size=n, p=_HELD_AT)

    # Whole seconds, each step at least a minute after the one before: the order holds
    # by construction, whatever the draws.
    steps = np.empty((n, len(STEP_COLUMNS)), dtype=np.int64)
    steps[:, 0] = reported + _seconds(register)
    steps[:, 1] = steps[:, 0] + _seconds(dispatch)
    steps[:, 2] = np.maximum(reported + _seconds(to_handled), steps[:, 1] + _MINUTE)
    steps[:, 3] = steps[:, 2] + _seconds(verify)
    steps[:, 4] = steps[:, 3] + _seconds(close)
    reached = (steps < end_s).sum(axis=1)  # steps are in order: reached ones come first
    reached = np.where(held, np.minimum(reached, held_at), reached)

    tz = pd.DatetimeIndex(reported_at).tz
    history: dict[str, object] = {
        "status": pd.array(np.asarray(INCIDENT_STATUSES, dtype=object)[reached], dtype="str"),
        "handling_level": pd.array(
            np.where(
                reached >= 1,
                np.asarray(HANDLING_LEVELS, dtype=object)[level],
                np.array(None, dtype=object),
            ),
            dtype="str",
        ),
    }
    for k, column in enumerate(STEP_COLUMNS):
        seconds = np.where(reached > k, steps[:, k], np.iinfo(np.int64).min)  # min: NaT
        moments = pd.DatetimeIndex(seconds.astype("datetime64[s]"), tz="UTC").tz_convert(tz)
        history[column] = moments.as_unit("ns")
    frame = pd.DataFrame(history, index=pd.RangeIndex(n))
    return frame[list(HISTORY_COLUMNS)]


def _lognormal(rng: np.random.Generator, median_s: float, sigma: float, n: int) -> np.ndarray:
    return median_s * np.exp(sigma * rng.standard_normal(n))


def _seconds(durations: np.ndarray) -> np.ndarray:
    """Whole seconds, at least a minute."""
    return np.maximum(np.rint(durations), _MINUTE).astype(np.int64)
