"""Map data and pages of a running app, cached per data fingerprint and parameter set.

Loading the district (areas, staff, 50,000 incidents) and checking its coverage
takes seconds; a page from loaded data well under one; a cached page nothing.
:class:`MapService` keeps one :class:`~app.services.map_data.MapData` per generation,
reloads it when :func:`~app.services.map_data.data_fingerprint` changes (asked at most
every ``refresh_seconds``), and keeps the newest pages in an LRU. Concurrent
requests for the same page wait for one build ("single flight").
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Engine

from app.maps.assets import AssetStore
from app.maps.settings import MapSettings
from app.services.map_data import MapData, data_fingerprint, load_map_data
from gis.errors import GridmapError

__all__ = ["MapService"]

log = logging.getLogger("gridmap.maps")


class MapService:
    """Cached map data and pages for one database.

    Parameters
    ----------
    engine : Engine
    settings : MapSettings, optional
    store : AssetStore, optional
        Default: the one under ``settings.asset_dir``.
    """

    def __init__(
        self, engine: Engine, settings: MapSettings | None = None, store: AssetStore | None = None
    ):
        self.engine = engine
        self.settings = settings or MapSettings()
        self.store = store or AssetStore(self.settings.asset_dir)
        self._lock = threading.Lock()
        self._data: dict[str | None, MapData] = {}
        self._loading: dict[str | None, threading.Lock] = {}
        # (monotonic time, fingerprint) of the last check
        self._checked: tuple[float, tuple | None] = (0.0, None)
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}

    # -- data ----------------------------------------------------------------------------
    def fingerprint(self) -> tuple:
        """The data fingerprint, asked of the database at most every ``refresh_seconds``."""
        at, known = self._checked
        if known is not None and time.monotonic() - at < self.settings.refresh_seconds:
            return known
        with self.engine.connect() as conn:
            fingerprint = data_fingerprint(conn)
        self._checked = (time.monotonic(), fingerprint)
        return fingerprint

    def data(self, generation: str | None = None) -> MapData:
        """The data of ``generation`` (default active), reloaded when the database changed."""
        fingerprint = self.fingerprint()
        current = self._data.get(generation)
        if current is not None and current.fingerprint[1:] == fingerprint:
            return current
        with self._single(self._loading, generation):
            current = self._data.get(generation)
            if current is not None and current.fingerprint[1:] == fingerprint:
                return current
            started = time.perf_counter()
            with self.engine.connect() as conn:
                loaded = load_map_data(conn, generation)
            log.info(
                "map data of generation %s loaded in %.2f s",
                loaded.generation["label"],
                time.perf_counter() - started,
            )
            with self._lock:
                self._data[generation] = loaded
                self._pages.clear()  # built from the old data
            return loaded

    # -- pages ---------------------------------------------------------------------------
    def etag(self, key: Hashable) -> str:
        """Validator of the page ``key`` for the current data (cheap: no build)."""
        text = repr((self.fingerprint(), key, self.store.version("gridmap")))
        return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'

    def page(
        self, key: Hashable, build: Callable[[MapData], str], generation: str | None = None
    ) -> str:
        """The page ``key``, built by ``build(data)`` unless cached for the current data."""
        data = self.data(generation)
        full_key = (data.fingerprint, key)
        cached = self._cached_page(full_key)
        if cached is not None:
            return cached
        with self._single(self._building, full_key):
            cached = self._cached_page(full_key)
            if cached is not None:
                return cached
            started = time.perf_counter()
            html = build(data)
            log.info("map page %r built in %.2f s", key, time.perf_counter() - started)
            with self._lock:
                self._pages[full_key] = html
                while len(self._pages) > self.settings.page_cache:
                    self._pages.popitem(last=False)
                self._building.pop(full_key, None)  # later callers find the page
            return html

    def _cached_page(self, key: Hashable) -> str | None:
        with self._lock:
            html = self._pages.get(key)
            if html is not None:
                self._pages.move_to_end(key)
            return html

    def _single(self, locks: dict, key: Any) -> threading.Lock:
        with self._lock:
            return locks.setdefault(key, threading.Lock())

    # -- start-up ------------------------------------------------------------------------
    def warm(self, build: Callable[[MapData], str], key: Hashable) -> threading.Thread:
        """Build one page in a background thread (errors are logged, not raised)."""

        def run() -> None:
            try:
                self.page(key, build)
            except GridmapError as exc:  # no data yet, assets missing: requests will say so
                log.info("map not prepared in advance: %s", exc)
            except Exception:  # a bug: logged in full, the request will fail the same way
                log.warning("could not prepare the map in advance", exc_info=True)

        thread = threading.Thread(target=run, name="gridmap-map-warm", daemon=True)
        thread.start()
        return thread
