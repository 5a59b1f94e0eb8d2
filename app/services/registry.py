"""What the API keeps in memory: the areas of the active generation, ready for lookups.

A :class:`GenerationView` is an immutable snapshot of one generation: its
:class:`gis.hierarchy.HierarchyIndex`, the names and kinds of its areas and the
staff of each, and the units of its thematic layers. Lookups never touch the
database. The :class:`AreaRegistry` swaps in a new snapshot when the active
generation, its areas, its staff or its themes change (the ``areas`` part of the
shared :class:`~app.services.data_version.DataVersion`), so a generation activated
or a theme imported by the CLI in another process is picked up too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from app.db import repo
from app.db.snapshots import area_labels
from app.db.staff import staff_frame
from app.errors import NotFoundError, NotReadyError
from app.services.assignment import load_hierarchy
from app.services.data_version import DataVersion
from app.services.index_store import IndexStore
from app.services.layers import ThemeUnits, load_theme_units
from gis.assign import HierarchyIndex
from gis.errors import GridmapError

__all__ = ["AreaRegistry", "GenerationView", "assign_hierarchy", "assign_point"]


@dataclass(frozen=True)
class GenerationView:
    """One generation's areas in memory: index, names and staff."""

    generation: repo.GenerationInfo
    index: HierarchyIndex
    #: code → (name, level, kind) of every area of the generation.
    areas: dict[str, tuple[str | None, str, str | None]]
    #: area code → its staff, each a dict with name, role and phone.
    staff: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: theme → its units (多格合一), answered like the hierarchy.
    themes: dict[str, ThemeUnits] = field(default_factory=dict)

    def describe(self, code: str | None, with_staff: bool = False) -> dict[str, Any] | None:
        """``{"code", "name", "kind"[, "staff"]}`` of an area, None for no code."""
        if code is None:
            return None
        name, _, kind = self.areas.get(code, (None, "", None))
        out: dict[str, Any] = {"code": code, "name": name, "kind": kind}
        if with_staff:
            out["staff"] = self.staff.get(code, [])
        return out

    def theme_units(self, lon: float, lat: float) -> dict[str, dict[str, Any] | None]:
        """Theme → ``{"code", "name"}`` of its unit covering a WGS84 point (None: no unit)."""
        return {theme: units.at(lon, lat) for theme, units in self.themes.items()}

    def theme_codes(self, lon: np.ndarray, lat: np.ndarray) -> dict[str, list[str | None]]:
        """Theme → the unit code covering each WGS84 point (None: no unit)."""
        return {theme: units.codes_at(lon, lat) for theme, units in self.themes.items()}

    def matches(self, ref: str | None) -> bool:
        return ref is None or ref in (self.generation.label, str(self.generation.id))


def assign_hierarchy(
    index: HierarchyIndex, lon: np.ndarray, lat: np.ndarray, tolerance: float = 0.0
) -> dict[str, np.ndarray]:
    """What ``HierarchyIndex.assign_xy`` answers, as NumPy arrays without pandas."""
    return index.assign_arrays(lon, lat, tolerance)


def assign_point(index: HierarchyIndex, lon: float, lat: float) -> dict[str, Any]:
    """One WGS84 point without snapping, as scalars: a raster read for most points."""
    return index.assign_point(lon, lat)


class AreaRegistry:
    """The active generation's :class:`GenerationView`, plus a few others on demand.

    Parameters
    ----------
    engine : Engine
        Where the areas live.
    version : DataVersion
        The app's data version, shared with the map data.
    keep : int, default 2
        Inactive generations kept in memory after a lookup asked for them.
    indexes : IndexStore, optional
        Where built lookup indexes are kept between runs (a city's takes seconds
        to build, a fraction of one to read); without it each start builds them.
    """

    def __init__(
        self,
        engine: Engine,
        version: DataVersion,
        keep: int = 2,
        indexes: IndexStore | None = None,
    ):
        self._engine = engine
        self._indexes = indexes
        self._version = version
        self._keep = keep
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._active: GenerationView | None = None
        self._others: OrderedDict[int, GenerationView] = OrderedDict()
        self._areas_version: tuple | None = None

    @property
    def active(self) -> GenerationView | None:
        return self._active

    def require_active(self) -> GenerationView:
        view = self._active
        if view is None:
            raise NotReadyError(
                "no active generation with grids: import areas (gridmap areas "
                "import) or load the demo (gridmap demo) first"
            )
        return view

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the active view if anything it depends on changed; True if rebuilt.

        Asks the database for the data version now (new incidents alone do not
        rebuild the index).
        """
        areas_version = self._version.check().areas
        if not force and areas_version == self._areas_version:
            return False
        with self._engine.connect() as conn:
            gen = repo.active_generation(conn)
            view = _try_build(conn, gen, self._indexes) if gen else None
        with self._lock:
            self._active, self._areas_version = view, areas_version
            self._others.clear()  # their areas may have changed too
        return True

    def view(self, ref: str | None) -> GenerationView:
        """The view of generation ``ref`` (label or id), or of the active one.

        Building an inactive generation's view reads the database: call it
        from a worker thread, not the event loop.
        """
        active = self._active
        if active is not None and active.matches(ref):
            return active
        if ref is None:
            return self.require_active()
        with self._engine.connect() as conn:
            gen = repo.get_generation(conn, ref)
            if gen is None:
                raise NotFoundError(f"no generation {ref!r}; see GET /generations")
            # One build at a time: concurrent first requests for the same generation
            # wait for the first build instead of repeating it.
            with self._build_lock:
                with self._lock:
                    if gen.id in self._others:
                        self._others.move_to_end(gen.id)
                        return self._others[gen.id]
                view = _build(conn, gen, self._indexes)
                with self._lock:
                    self._others[gen.id] = view
                    while len(self._others) > self._keep:
                        self._others.popitem(last=False)
        return view


def _try_build(
    conn: Connection, gen: repo.GenerationInfo, indexes: IndexStore | None
) -> GenerationView | None:
    try:
        return _build(conn, gen, indexes)
    except GridmapError:
        return None  # e.g. a generation without grids yet: not ready, not broken


def _build(
    conn: Connection, gen: repo.GenerationInfo, indexes: IndexStore | None
) -> GenerationView:
    try:
        index = load_hierarchy(conn, gen.id, indexes)
    except GridmapError as exc:
        raise NotReadyError(f"generation {gen.label!r} cannot answer lookups: {exc}") from exc
    staff: dict[str, list[dict[str, Any]]] = {}
    frame = staff_frame(conn, gen.id)
    # Plain lists: iterating a frame's rows costs a second for a city's 100,000 staff.
    columns = [frame[c].tolist() for c in ("area_code", "name", "role", "phone")]
    for area_code, name, role, phone in zip(*columns, strict=True):
        staff.setdefault(area_code, []).append({"name": name, "role": role, "phone": phone})
    themes = load_theme_units(conn, gen.id)
    return GenerationView(gen, index, area_labels(conn, gen.id), staff, themes)
