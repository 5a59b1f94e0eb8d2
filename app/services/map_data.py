"""What the map pages and the analyses work on, as GeoDataFrames, and its cache in the app.

:class:`MapData` holds one generation's areas (per level), its staff roster and the
incidents with their assignment under the active generation. It comes from the
database (:func:`load_map_data`, reading through :mod:`app.db.snapshots`) or, for
notebooks and benchmarks, straight from a generated demo district
(:meth:`MapData.from_demo`); the page builders cannot tell.

A running app keeps one per generation in a :class:`MapDataCache`: loading the
district (areas, staff, 50,000 incidents) takes seconds, so it is reloaded only
when the shared :class:`~app.services.data_version.DataVersion` changes.

From the database, the incidents are read only when something asks for them
(:attr:`MapData.incidents`): a city's million take a minute, and what the district
map needs of them — counts per grid, a heat surface, a sample of points, those
outside every grid — :mod:`app.services.analysis` asks the database for
(:attr:`MapData.stored`). The areas, which change far less often than the
incidents, are kept on disk per generation version
(:class:`~app.services.index_store.VersionStore`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import repo
from app.db.snapshots import (
    INCIDENT_COLUMNS,
    DataFingerprint,
    current_incidents,
    data_fingerprint,
    level_stamps,
)
from app.db.staff import STAFF_COLUMNS, staff_frame
from app.services.data_version import DataVersion
from app.services.index_store import VersionStore, code_stamp, database_key
from app.services.layers import (
    ThemeCrosswalk,
    generation_or_not_found,
    themes_on,
    themes_stamp,
)
from gis.errors import GridmapError
from gis.vocabulary import AREA_LEVELS, LOCAL_TIMEZONE

__all__ = ["INCIDENT_COLUMNS", "MapData", "MapDataCache", "StoredData", "load_map_data"]

log = logging.getLogger("gridmap.maps")

#: Seconds a thematic layers' stamp is trusted before the database is asked again.
THEMES_MAX_AGE = 2.0


@dataclass(frozen=True, eq=False)
class StoredData:
    """Where a :class:`MapData` came from, for analyses that ask the database instead.

    Attributes
    ----------
    engine : Engine
    database : str
        Which database (:func:`app.services.index_store.database_key`).
    generation_id : int
    stamps : dict
        Per level: count and digest of the generation's area rows when loaded
        (:func:`app.db.snapshots.level_stamps`); what a result built from the areas
        alone is kept on disk under.
    incidents : int
        The number of incidents when loaded (the data version's).
    directory : Path or None
        Where results built from the areas are kept (None: in memory only).
    """

    engine: Engine
    database: str
    generation_id: int
    stamps: dict[str, tuple[int, str]]
    incidents: int
    directory: Path | None = None

    def stamp(self, levels: tuple[str, ...]) -> tuple:
        """The version of the areas at ``levels``."""
        return tuple((level, self.stamps.get(level)) for level in levels)

    def store(self, kind: str, *sources: Path) -> VersionStore | None:
        """The on-disk store of ``kind``, built by the code in ``sources`` (None: no directory)."""
        if self.directory is None:
            return None
        return VersionStore(self.directory / kind, kind, lambda: _stamp(sources))


def _stamp(sources: tuple[Path, ...]) -> str:
    return _stamps.setdefault(sources, code_stamp(*sources))


_stamps: dict[tuple[Path, ...], str] = {}
#: The code that reads areas from the database: a change gives new files.
_AREAS_CODE = (Path(__file__).resolve().parents[1] / "db" / "repo.py",)


class IncidentLoader:
    """The incidents of a database, read once, on first use (thread-safe)."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()
        self._frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        with self._lock:
            if self._frame is None:
                started = time.perf_counter()
                with self._engine.connect() as conn:
                    self._frame = current_incidents(conn)
                log.info(
                    "%d incidents read in %.2f s", len(self._frame), time.perf_counter() - started
                )
            return self._frame


class _Incidents:
    """The ``incidents`` field of :class:`MapData`: a frame, or an :class:`IncidentLoader`
    that reads it when first asked."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = "_" + name

    def __get__(self, obj: Any, owner: Any = None) -> pd.DataFrame:
        if obj is None:
            raise AttributeError(self._name)  # no default value for the field
        value = obj.__dict__[self._name]
        return value.frame() if isinstance(value, IncidentLoader) else value

    def __set__(self, obj: Any, value: pd.DataFrame | IncidentLoader) -> None:
        obj.__dict__[self._name] = value


@dataclass(repr=False)
class MapData:
    """One generation's areas, staff and the incidents assigned under it.

    Attributes
    ----------
    generation : dict
        ``id`` and ``label``.
    areas : dict of str to geopandas.GeoDataFrame
        Per level of :data:`gis.vocabulary.AREA_LEVELS` present: ``code, name, level, kind,
        parent_code, population, households, responsible`` and the geometry,
        EPSG:4326, sorted by code.
    staff : pandas.DataFrame
        :data:`~app.db.staff.STAFF_COLUMNS`.
    incidents : pandas.DataFrame
        :data:`INCIDENT_COLUMNS`; ``reported_at`` in Asia/Shanghai, ``lon``/``lat``
        WGS84 (NaN when unlocated). Given an :class:`IncidentLoader`, read on first use.
    fingerprint : tuple
        Changes whenever the data would: the cache key of everything built from it.
    themes : dict of str to ThemeCrosswalk
        The generation's thematic layers (多格合一) with their crosswalk over the grids.
    stored : StoredData or None
        Where the data came from (None: not from a database).
    """

    generation: dict
    areas: dict[str, gpd.GeoDataFrame]
    staff: pd.DataFrame
    incidents: pd.DataFrame = _Incidents()  # type: ignore[assignment]
    fingerprint: tuple = ()
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    themes: dict[str, ThemeCrosswalk] = field(default_factory=dict)
    stored: StoredData | None = None

    def __repr__(self) -> str:
        return f"MapData({self.generation!r}, {self.fingerprint!r})"

    @property
    def in_database(self) -> StoredData | None:
        """Where to count the incidents instead of reading them: the database they are all
        in (None when this data holds its own incidents, e.g. one audience's part)."""
        held = self.__dict__.get("_incidents")
        return self.stored if isinstance(held, IncidentLoader) else None

    def level(self, level: str) -> gpd.GeoDataFrame:
        """The areas of ``level`` (an empty frame when the generation has none)."""
        found = self.areas.get(level)
        if found is None:
            return gpd.GeoDataFrame(
                {"code": [], "name": [], "level": [], "parent_code": []},
                geometry=gpd.GeoSeries([], crs=4326),
                crs=4326,
            )
        return found

    def all_areas(self) -> gpd.GeoDataFrame:
        """Every level in one frame, top to bottom."""
        frames = [self.areas[lv] for lv in AREA_LEVELS if lv in self.areas]
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)

    @classmethod
    def from_demo(cls, demo: Any) -> MapData:
        """Map data straight from a :class:`gis.demo.DemoDistrict`, without a database.

        Incidents are assigned in memory with :class:`gis.hierarchy.HierarchyIndex`
        (the rule the database applies); address-only reports sit at their door
        plate, as the gazetteer geocoder would place them.
        """
        from gis.assign import HierarchyIndex
        from gis.coverage import incident_lonlat

        areas = {
            lv: frame
            for lv, frame in zip(
                AREA_LEVELS,
                [demo.district, demo.streets, demo.communities, demo.grids, demo.micro_grids],
                strict=True,
            )
        }
        src = demo.incidents
        lon, lat = incident_lonlat(src)
        missing = np.isnan(lon)
        lon[missing], lat[missing] = (
            src["true_lon"].to_numpy()[missing],
            src["true_lat"].to_numpy()[missing],
        )
        assigned = HierarchyIndex(demo.areas()).assign_xy(lon, lat)
        incidents = pd.DataFrame(
            {
                "id": np.arange(1, len(src) + 1),
                "source": src["source"].to_numpy(),
                "category": src["category"].to_numpy(),
                "reported_at": pd.to_datetime(src["reported_at"])
                .dt.tz_convert(LOCAL_TIMEZONE)
                .array,
                "status": "reported",
                "location_status": np.where(missing, "geocoded", "located"),
                **{c: assigned[c].to_numpy() for c in assigned.columns},
                "lon": lon,
                "lat": lat,
            }
        )
        generation = {"id": 0, "label": f"demo {demo.seed} (in memory)"}
        return cls(
            generation,
            areas,
            demo.staff[list(STAFF_COLUMNS)].copy(),
            incidents[list(INCIDENT_COLUMNS)],
            ("demo", demo.seed, id(demo)),
        )


def load_map_data(
    conn: Connection,
    generation: str | None = None,
    directory: Path | None = None,
    fingerprint: DataFingerprint | None = None,
) -> MapData:
    """The areas, staff and incidents of a generation (default: the active one).

    The incidents are read when first used. With ``directory``, the areas are kept
    there per generation version, and so are the analyses built from them alone.
    ``fingerprint``: the data version just asked (default: asked here).

    Raises
    ------
    NotFoundError
        For an unknown generation, or no active one.
    GridmapError
        If the generation has no grids.
    """
    gen = generation_or_not_found(conn, generation)
    fingerprint = fingerprint or data_fingerprint(conn)
    # before the areas are read: a change meanwhile gives them a stamp never asked again
    stored = StoredData(
        conn.engine,
        database_key(conn),
        gen.id,
        level_stamps(conn, gen.id),
        int(fingerprint.incidents[1]),
        directory,
    )
    areas = _areas(conn, stored)
    if "grid" not in areas:
        raise GridmapError(f"generation {gen.label!r} has no grids to map")
    themes = themes_on(conn, gen.id, areas["grid"], areas.get("micro_grid"))
    stamp = tuple((t, len(x.units)) for t, x in themes.items())
    return MapData(
        {"id": gen.id, "label": gen.label},
        areas,
        staff_frame(conn, gen.id),
        IncidentLoader(conn.engine),  # type: ignore[arg-type]
        (gen.id, fingerprint, stamp),
        themes=themes,
        stored=stored,
    )


def _areas(conn: Connection, stored: StoredData) -> dict[str, gpd.GeoDataFrame]:
    """The generation's areas per level: from disk when unchanged since kept there."""

    def read() -> dict[str, gpd.GeoDataFrame]:
        every = repo.areas_frame(conn, stored.generation_id)
        return {
            lv: every[every["level"] == lv].reset_index(drop=True)
            for lv in AREA_LEVELS
            if (every["level"] == lv).any()
        }

    store = stored.store("areas", *_AREAS_CODE)
    if store is None:
        return read()
    path = store.named(stored.database, stored.generation_id, stored.stamp(AREA_LEVELS))
    return store.load(path, read, dict)


class MapDataCache:
    """One :class:`MapData` per generation, reloaded when the data version changes.

    Concurrent requests for a generation being loaded wait for that one load.

    Parameters
    ----------
    engine : Engine
    version : DataVersion
        The app's data version, shared with the lookup registry.
    directory : Path, optional
        Where areas and the analyses built from them alone are kept per generation
        version (see :func:`load_map_data`); None keeps nothing on disk.
    """

    def __init__(self, engine: Engine, version: DataVersion, directory: Path | None = None):
        self._engine = engine
        self._version = version
        self.directory = directory
        self._lock = threading.Lock()
        # generation → (data version it was loaded under, data)
        self._data: dict[str | None, tuple[tuple, MapData]] = {}
        self._loading: dict[str | None, threading.Lock] = {}
        # (monotonic time, stamp) of the thematic layers, trusted like the data version
        self._themes: tuple[float, tuple] | None = None

    @property
    def source(self) -> str:
        """Which database the data come from (host, port, name; no password)."""
        url = self._engine.url
        return f"{url.host}:{url.port}/{url.database}"

    def version(self) -> tuple[DataFingerprint, tuple]:
        """The current data version and that of the thematic layers (which the maps draw)."""
        return self._version.current(), self._themes_stamp()

    def _themes_stamp(self) -> tuple:
        known = self._themes
        if known is not None and time.monotonic() - known[0] < THEMES_MAX_AGE:
            return known[1]
        stamp = themes_stamp(self._engine)
        self._themes = (time.monotonic(), stamp)
        return stamp

    def data(self, generation: str | None = None) -> MapData:
        """The data of ``generation`` (default active), reloaded when the database changed."""
        version = self.version()
        current = self._fresh(generation, version)
        if current is not None:
            return current
        with self._lock:
            loading = self._loading.setdefault(generation, threading.Lock())
        with loading:
            current = self._fresh(generation, version)
            if current is not None:
                return current
            started = time.perf_counter()
            with self._engine.connect() as conn:
                loaded = load_map_data(conn, generation, self.directory, version[0])
            log.info(
                "map data of generation %s loaded in %.2f s",
                loaded.generation["label"],
                time.perf_counter() - started,
            )
            self._data[generation] = (version, loaded)
            return loaded

    def _fresh(self, generation: str | None, version: tuple) -> MapData | None:
        known = self._data.get(generation)
        return known[1] if known is not None and known[0] == version else None
