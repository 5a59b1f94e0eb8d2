"""The version of the data the app keeps in memory, asked of the database in one place.

The lookup index (:class:`app.services.registry.AreaRegistry`) and the map data
(:class:`app.services.map_data.MapDataCache`) are snapshots of the same
tables. They share one :class:`DataVersion`: one fingerprint query
(:func:`app.db.snapshots.data_fingerprint`) and one rule for when to ask it
again, so a generation activated by the CLI in another process reaches both.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from app.db.snapshots import DataFingerprint, data_fingerprint

__all__ = ["DataVersion"]

log = logging.getLogger("gridmap.data")


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
        # held while a background question (latest) is under way: one at a time
        self._asking = threading.Lock()

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

    def latest(self) -> DataFingerprint:
        """The last answer at once; when it is older than ``max_age``, ask in the background.

        For requests that must not wait: on a city (a million incidents) the fingerprint
        takes about half a second. Only the first call ever waits for the database;
        a request seeing an old answer is one ``max_age`` late at most, as with
        :meth:`current`.
        """
        known = self._known
        if known is None:
            return self.check()
        if time.monotonic() - known[0] >= self._max_age and self._asking.acquire(blocking=False):
            threading.Thread(target=self._ask_in_background, daemon=True).start()
        return known[1]

    def _ask_in_background(self) -> None:
        try:
            self.check()
        except Exception:  # noqa: BLE001 — an outage: the next request tries again
            log.warning("data version not refreshed", exc_info=True)
        finally:
            self._asking.release()
