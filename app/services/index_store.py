"""Built lookup indexes kept on disk, so the CLI and the server build each one once.

A city's :class:`gis.assign.HierarchyIndex` (four levels over 39,000 micro-grids)
takes seconds to build and a fraction of one to read back. :class:`IndexStore`
keeps each built index under ``<data_dir>/cache/index``, named by

* the database: its cluster's system identifier, name and oid, besides the URL
  (:func:`app.db.snapshots.database_identity`), so a file is never read for
  another database, nor for a re-created one of the same name;
* the generation and a digest of its area rows (:func:`app.db.snapshots.areas_stamp`):
  any area added, removed, carried over or changed gives a new name;
* the code that builds indexes (``gis/assign``) and the versions of the
  libraries that pickle them.

A changed version thus never reads an old file; old files are pruned, the newest
``keep`` stay. Files are written atomically (a temporary file renamed into place),
and a file that cannot be read is rebuilt, never trusted. The directory is the
project's own, like the database files beside it: only this user writes there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import threading
from functools import cache
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import Connection

from app.config import Settings
from app.db import repo
from app.db.snapshots import areas_stamp, database_identity
from gis.assign import ASSIGNED_LEVELS, HierarchyIndex

__all__ = ["IndexStore", "build_hierarchy"]

log = logging.getLogger("gridmap.index")

#: Format of the files; bump when what is pickled changes shape.
_FORMAT = 1


def build_hierarchy(conn: Connection, generation_id: int) -> HierarchyIndex:
    """Build the lookup index of a generation from its areas (no store)."""
    areas = repo.areas_frame(conn, generation_id, columns=("code", "level"))
    return HierarchyIndex(areas[areas["level"].isin(list(ASSIGNED_LEVELS))])


class IndexStore:
    """Lookup indexes on disk under ``directory``: the last used ``keep`` of them.

    Parameters
    ----------
    directory : Path
    keep : int, default 16
        Files kept in all (a city's index is about 60 MB, a district's 25 MB),
        the least recently used pruned first.
    keep_per_database : int, default 2
        Files kept per database: its active generation and one other (older
        versions of a database's areas are never read again).
    """

    def __init__(self, directory: Path, keep: int = 16, keep_per_database: int = 2):
        self.directory = directory
        self.keep = keep
        self.keep_per_database = keep_per_database

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexStore:
        return cls(settings.data_dir / "cache" / "index")

    def hierarchy(self, conn: Connection, generation_id: int) -> HierarchyIndex:
        """The index of a generation: read from disk when its areas are unchanged, else built."""
        path = self.path(conn, generation_id)
        index = self._read(path)
        if index is None:
            index = build_hierarchy(conn, generation_id)
            self._write(path, index)
        return index

    def path(self, conn: Connection, generation_id: int) -> Path:
        """The file of a generation's index for the areas it has now."""
        url = conn.engine.url
        database = f"{url.host}:{url.port}/{database_identity(conn)}"
        count, digest = areas_stamp(conn, generation_id, list(ASSIGNED_LEVELS))
        version = repr((_FORMAT, generation_id, count, digest, _code()))
        return self.directory / (f"{_short(database)}-{generation_id}-{_short(version, 24)}.pkl")

    def _read(self, path: Path) -> HierarchyIndex | None:
        try:
            with path.open("rb") as file:
                index = pickle.load(file)
        except FileNotFoundError:
            return None
        except Exception as exc:  # truncated, or from another build: rebuilt, not trusted
            log.warning("lookup index %s unreadable (%s); rebuilding it", path.name, exc)
            return None
        if not isinstance(index, HierarchyIndex):
            return None
        os.utime(path)  # recently used: pruned last
        return index

    def _write(self, path: Path, index: HierarchyIndex) -> None:
        """Write atomically and keep the newest ``keep`` files (best effort)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            with partial.open("wb") as file:
                pickle.dump(index, file, protocol=pickle.HIGHEST_PROTOCOL)
            partial.replace(path)
            database = path.name.split("-")[0]
            for pattern, keep in (
                (f"{database}-*.pkl", self.keep_per_database),
                ("*.pkl", self.keep),
            ):
                files = sorted(path.parent.glob(pattern), key=_mtime)
                for old in files[: max(0, len(files) - max(keep, 1))]:
                    old.unlink(missing_ok=True)
        except OSError as exc:  # a full or read-only disk costs the next start, not this one
            log.warning("could not keep the lookup index on disk: %s", exc)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned meanwhile by another process
        return 0.0


def _short(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@cache
def _code() -> str:
    """A stamp of the index code and of the libraries that pickle it."""
    root = Path(__file__).resolve().parents[2] / "gis" / "assign"
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{sys.version}|{np.__version__}|{shapely.__version__}".encode())
    return digest.hexdigest()[:16]
