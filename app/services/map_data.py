"""What the map pages and the analyses work on, as GeoDataFrames, and its cache in the app.

:class:`MapData` holds one generation's areas (per level), its staff roster and the
incidents with their assignment under the active generation. It comes from the
database (:func:`load_map_data`, reading through :mod:`app.db.snapshots`) or, for
notebooks and benchmarks, straight from a generated demo district
(:meth:`MapData.from_demo`); the page builders cannot tell.

A running app keeps one per generation in a :class:`MapDataCache`: loading the
district (areas, staff, 50,000 incidents) takes seconds, so it is reloaded only
when the shared :class:`~app.services.data_version.DataVersion` changes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import repo
from app.db.snapshots import INCIDENT_COLUMNS, DataFingerprint, current_incidents, data_fingerprint
from app.db.staff import STAFF_COLUMNS, staff_frame
from app.services.data_version import DataVersion
from app.services.layers import (
    ThemeCrosswalk,
    generation_or_not_found,
    themes_on,
    themes_stamp,
)
from gis.errors import GridmapError
from gis.vocabulary import AREA_LEVELS, LOCAL_TIMEZONE

__all__ = ["INCIDENT_COLUMNS", "MapData", "MapDataCache", "load_map_data"]

log = logging.getLogger("gridmap.maps")

#: Seconds a thematic layers' stamp is trusted before the database is asked again.
THEMES_MAX_AGE = 2.0


@dataclass
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
        WGS84 (NaN when unlocated).
    fingerprint : tuple
        Changes whenever the data would: the cache key of everything built from it.
    themes : dict of str to ThemeCrosswalk
        The generation's thematic layers (多格合一) with their crosswalk over the grids.
    """

    generation: dict
    areas: dict[str, gpd.GeoDataFrame]
    staff: pd.DataFrame
    incidents: pd.DataFrame
    fingerprint: tuple = ()
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    themes: dict[str, ThemeCrosswalk] = field(default_factory=dict)

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


def load_map_data(conn: Connection, generation: str | None = None) -> MapData:
    """The areas, staff and incidents of a generation (default: the active one).

    Raises
    ------
    NotFoundError
        For an unknown generation, or no active one.
    GridmapError
        If the generation has no grids.
    """
    gen = generation_or_not_found(conn, generation)
    fingerprint = data_fingerprint(conn)
    every = repo.areas_frame(conn, gen.id)
    areas = {
        lv: every[every["level"] == lv].reset_index(drop=True)
        for lv in AREA_LEVELS
        if (every["level"] == lv).any()
    }
    if "grid" not in areas:
        raise GridmapError(f"generation {gen.label!r} has no grids to map")
    themes = themes_on(conn, gen.id, areas["grid"], areas.get("micro_grid"))
    stamp = tuple((t, len(x.units)) for t, x in themes.items())
    return MapData(
        {"id": gen.id, "label": gen.label},
        areas,
        staff_frame(conn, gen.id),
        current_incidents(conn),
        (gen.id, fingerprint, stamp),
        themes=themes,
    )


class MapDataCache:
    """One :class:`MapData` per generation, reloaded when the data version changes.

    Concurrent requests for a generation being loaded wait for that one load.

    Parameters
    ----------
    engine : Engine
    version : DataVersion
        The app's data version, shared with the lookup registry.
    """

    def __init__(self, engine: Engine, version: DataVersion):
        self._engine = engine
        self._version = version
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
                loaded = load_map_data(conn, generation)
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
