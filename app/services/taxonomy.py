"""The deployment's category taxonomy: the one in use, importing and exporting versions.

A city replaces the repository's ``data/taxonomy.csv`` (seeded as version 1 by
migration 0005) with its own through ``gridmap taxonomy import``; the API,
Open311 ``services`` and incident imports follow the newest stored version.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import taxonomy as taxonomy_rows
from app.errors import NotFoundError
from gis.tables import TableSource, write_table
from gis.taxonomy import TAXONOMY_COLUMNS, load_taxonomy, read_taxonomy

#: How long the API trusts its copy before asking which version is current (seconds).
REFRESH_SECONDS = 2.0


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    major_code: str
    major_name_zh: str
    major_name_en: str
    deadline_hours: int


def current_taxonomy(conn: Connection) -> tuple[int | None, pd.DataFrame]:
    """(version id, items) of the taxonomy in use; the repository's file when none is stored."""
    version = taxonomy_rows.current_version_id(conn)
    if version is None:
        return None, load_taxonomy()
    return version, taxonomy_rows.items_frame(conn, version)


class Taxonomy:
    """Categories by code.

    Given an engine it follows the stored taxonomy: at most every
    :data:`REFRESH_SECONDS` it asks which version is current and reloads when
    another process (``gridmap taxonomy import``) stored a new one. Given a
    frame (or nothing) it is that fixed taxonomy (``data/taxonomy.csv``).
    """

    def __init__(self, engine: Engine | None = None, *, frame: pd.DataFrame | None = None):
        self._engine = engine
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._loaded = False
        #: The stored version in use; None for a fixed taxonomy or the file fallback.
        self.version: int | None = None
        self._use(load_taxonomy() if frame is None and engine is None else frame)

    def _use(self, frame: pd.DataFrame | None) -> None:
        self._frame = frame if frame is not None else pd.DataFrame()
        self._by_code = {
            row["code"]: Category(**{k: row[k] for k in Category.__dataclass_fields__})
            for row in self._frame.to_dict("records")
        }

    def refresh(self, force: bool = False) -> None:
        """Reload when the stored version changed (checked at most every few seconds)."""
        if self._engine is None:
            return
        with self._lock:
            now = time.monotonic()
            if not force and self._loaded and now - self._checked < REFRESH_SECONDS:
                return
            with self._engine.connect() as conn:
                current = taxonomy_rows.current_version_id(conn)
                if current != self.version or not self._loaded:
                    self.version, frame = current_taxonomy(conn)
                    self._use(frame)
            self._loaded, self._checked = True, now

    @property
    def frame(self) -> pd.DataFrame:
        self.refresh()
        return self._frame

    @property
    def by_code(self) -> dict[str, Category]:
        self.refresh()
        return self._by_code

    def name(self, code: str | None, lang: str = "zh") -> str | None:
        category = self.by_code.get(code or "")
        if category is None:
            return None
        return category.name_en if lang == "en" else category.name_zh

    def deadlines(self) -> tuple[list[str], list[int]]:
        """(codes, hours): bound as two arrays and unnested in SQL."""
        by_code = self.by_code
        return list(by_code), [c.deadline_hours for c in by_code.values()]


# -- import and export -------------------------------------------------------------------
@dataclass(frozen=True)
class TaxonomyImport:
    version: int
    items: int
    majors: int
    read: TableSource


def import_taxonomy(
    engine: Engine, path: str | Path, *, sheet: str | int | None = None, encoding: str | None = None
) -> TaxonomyImport:
    """Validate a taxonomy file as a whole and store it as the newest version.

    Raises :class:`gis.errors.ValidationError` listing every problem; nothing is
    stored then.
    """
    path = Path(path)
    items, read = read_taxonomy(path, sheet=sheet, encoding=encoding)
    with engine.begin() as conn:
        version = taxonomy_rows.store_version(conn, items, path.name)
    return TaxonomyImport(version, len(items), items["major_code"].nunique(), read)


def taxonomy_version(conn: Connection, version: int | None = None) -> dict:
    """A stored version with its items (the current one by default), as the API shows it."""
    info = (
        taxonomy_rows.current_version(conn)
        if version is None
        else next((v for v in taxonomy_rows.list_versions(conn) if v.id == version), None)
    )
    if info is None:
        raise NotFoundError(f"no taxonomy version {version}" if version else "no taxonomy stored")
    items = taxonomy_rows.items_frame(conn, info.id)
    return {
        "version": info.id,
        "source": info.source,
        "created_at": info.created_at,
        "items": items.to_dict("records"),
    }


def export_taxonomy(engine: Engine, path: str | Path, version: int | None = None) -> int:
    """Write a stored version (the current one by default) as CSV or XLSX; returns the count."""
    with engine.connect() as conn:
        found = taxonomy_version(conn, version)
    frame = pd.DataFrame(found["items"], columns=TAXONOMY_COLUMNS)
    write_table(frame, path)
    return len(frame)
