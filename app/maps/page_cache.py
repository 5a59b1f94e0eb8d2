"""Built map pages of a running app, cached per data and parameter set.

A page from loaded data takes well under a second, a cached page nothing.
:class:`PageCache` keeps the newest pages in an LRU keyed by the data they were
built from (:attr:`~app.services.map_data.MapData.fingerprint`) and their
parameters; the data itself comes from the service layer's
:class:`~app.services.map_data.MapDataCache`. Concurrent requests for the same
page wait for one build ("single flight").

With ``page_store`` on, each built page is also written under ``page_dir``, named by
the database, the data version, the parameters and the code and assets that built
it: the first request after a restart on unchanged data reads the file instead of
loading the data and running the analyses again (a minute for a city). On changed
data, what depends on the areas alone (the areas themselves, their coverage, the
grids' contiguity) is kept with the pages, in ``page_dir/analysis``,
per generation version (see :mod:`app.services.analysis`), so a new incident costs
the analyses of incidents only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import cache
from pathlib import Path

from app.config import MapSettings
from app.maps.assets import ASSETS, AssetStore
from app.services.map_data import MapData, MapDataCache
from gis.errors import GridmapError

__all__ = ["PageCache", "analysis_dir"]

log = logging.getLogger("gridmap.maps")


class PageCache:
    """Map pages built from the app's map data, with their settings and assets.

    Parameters
    ----------
    data : MapDataCache
        Where the pages' data comes from.
    settings : MapSettings
    store : AssetStore, optional
        Default: the one under ``settings.asset_dir``.
    """

    def __init__(self, data: MapDataCache, settings: MapSettings, store: AssetStore | None = None):
        self.data = data
        self.settings = settings
        self.store = store or AssetStore(settings.asset_dir)
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        if settings.page_store and getattr(data, "directory", False) is None:
            data.directory = analysis_dir(settings)
        if settings.warm_on_startup:
            _import_in_background()

    def etag(self, key: Hashable) -> str:
        """Validator of the page ``key`` for the current data (cheap: no load, no build)."""
        text = repr((self.data.version(), key, self.store.version("gridmap")))
        return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'

    def page(
        self, key: Hashable, build: Callable[[MapData], str], generation: str | None = None
    ) -> str:
        """The page ``key``, built by ``build(data)`` unless cached for the current data."""
        stored = self._stored(key, generation)
        if stored is not None and stored.is_file():
            try:
                return stored.read_text(encoding="utf-8")
            except OSError:  # removed meanwhile by a pruning process: build it
                pass
        html = self._page(key, build, generation)
        if stored is not None:
            self._store(stored, html)
        return html

    def _page(self, key: Hashable, build: Callable[[MapData], str], generation: str | None) -> str:
        data = self.data.data(generation)
        full_key = (data.fingerprint, key)
        cached = self._cached_page(full_key)
        if cached is not None:
            return cached
        with self._lock:
            building = self._building.setdefault(full_key, threading.Lock())
        with building:
            cached = self._cached_page(full_key)
            if cached is not None:
                return cached
            started = time.perf_counter()
            try:
                html = build(data)
            except BaseException:
                # A failed build fails this request only: nothing of it stays behind.
                with self._lock:
                    self._building.pop(full_key, None)
                raise
            log.info("map page %r built in %.2f s", key, time.perf_counter() - started)
            with self._lock:
                self._pages[full_key] = html
                while len(self._pages) > self.settings.page_cache:
                    self._pages.popitem(last=False)
                self._building.pop(full_key, None)  # later callers find the page
            return html

    def _stored(self, key: Hashable, generation: str | None) -> Path | None:
        """The file of page ``key`` for the current data, or None without a page store."""
        source = getattr(self.data, "source", None)  # None: data not from a database
        if not self.settings.page_store or source is None:
            return None
        assets = tuple(
            sorted({(a.package, self.store.version(a.package)) for a in ASSETS.values()})
        )
        text = repr((source, self.data.version(), generation, key, assets, _code()))
        name = hashlib.sha256(text.encode()).hexdigest()[:40] + ".html"
        return self.settings.page_dir / name

    def _store(self, path: Path, html: str) -> None:
        """Write a page atomically and keep the newest ``page_cache`` files (best effort)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            partial.write_text(html, encoding="utf-8")
            partial.replace(path)
            pages = sorted(path.parent.glob("*.html"), key=lambda p: p.stat().st_mtime)
            for old in pages[: max(0, len(pages) - max(self.settings.page_cache, 1))]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # a full or read-only disk costs the next restart, not this page
            log.warning("could not keep the map page on disk: %s", exc)

    def _cached_page(self, key: Hashable) -> str | None:
        with self._lock:
            html = self._pages.get(key)
            if html is not None:
                self._pages.move_to_end(key)
            return html

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


def analysis_dir(settings: MapSettings) -> Path:
    """Where the analyses kept per generation version live: in the page store's folder."""
    return settings.page_dir / "analysis"


def _import_in_background() -> None:
    """Import what Gi* needs (esda, libpysal: seconds) while the app starts, not when the
    first map is asked for."""

    def run() -> None:
        try:
            import esda  # noqa: F401
        except Exception:  # the build that needs it will say why
            log.debug("esda not imported in advance", exc_info=True)

    threading.Thread(target=run, name="gridmap-map-imports", daemon=True).start()


@cache
def _code() -> str:
    """A stamp of the code that builds pages: a changed builder never serves an old file."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted([*root.joinpath("maps").glob("*.py"), root / "services" / "analysis.py"]):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()[:16]
