"""The version of the data the app keeps in memory, asked of the database in one place.

The lookup index (:class:`app.services.registry.AreaRegistry`) and the map data
(:class:`app.services.map_data.MapDataCache`) are snapshots of the same
tables. They share one :class:`DataVersion`: one fingerprint query
(:func:`app.db.snapshots.data_fingerprint`) and one rule for when to ask it
again, so a generation activated by the CLI in another process reaches both.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine

from app.db.snapshots import DataFingerprint, data_fingerprint

__all__ = ["DataVersion"]


class DataVersion:
    """The current :class:`~app.db.snapshots.DataFingerprint`, trusted for ``max_age`` seconds.

    Parameters
    ----------
    engine : Engine
    max_age : float
        How long an answer is trusted by :meth:`current`; :meth:`check` always asks.
    """

    def __init__(self, engine: Engine, max_age: float):
        self._engine = engine
        self._max_age = max_age
        # (monotonic time, fingerprint) of the last answer; replaced whole, so no lock
        self._known: tuple[float, DataFingerprint] | None = None

    def current(self) -> DataFingerprint:
        """The fingerprint, asked of the database only when the last answer is too old."""
        known = self._known
        if known is not None and time.monotonic() - known[0] < self._max_age:
            return known[1]
        return self.check()

    def check(self) -> DataFingerprint:
        """Ask the database now (the watcher's tick, or right after a change of our own)."""
        with self._engine.connect() as conn:
            fingerprint = data_fingerprint(conn)
        self._known = (time.monotonic(), fingerprint)
        return fingerprint
