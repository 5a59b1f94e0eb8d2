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

:class:`VersionStore` is the same store for anything else built from one
generation's areas alone (the map's coverage report and Gi* weights, see
:mod:`app.services.analysis`): named by the database, the generation, a digest of
the levels it is built from and a stamp of the code that builds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import shapely
from sqlalchemy import Connection

from app.config import Settings
from app.db import repo
from app.db.snapshots import areas_stamp, database_identity
from gis.assign import ASSIGNED_LEVELS, HierarchyIndex

__all__ = ["IndexStore", "VersionStore", "build_hierarchy", "code_stamp", "database_key"]

log = logging.getLogger("gridmap.index")

#: Format of the files; bump when what is pickled changes shape.
_FORMAT = 1
T = TypeVar("T")


def build_hierarchy(conn: Connection, generation_id: int) -> HierarchyIndex:
    """Build the lookup index of a generation from its areas (no store)."""
    areas = repo.areas_frame(conn, generation_id, columns=("code", "level"))
    return HierarchyIndex(areas[areas["level"].isin(list(ASSIGNED_LEVELS))])


class VersionStore:
    """Objects built from a generation's areas, on disk under ``directory``: the last used
    ``keep`` of them.

    Parameters
    ----------
    directory : Path
    kind : str
        What is kept (used in log lines).
    code : callable
        A stamp of the code that builds the objects (see :func:`code_stamp`): a changed
        builder never reads an old file.
    keep : int, default 16
        Files kept in all, the least recently used pruned first.
    keep_per_database : int, default 2
        Files kept per database: its active generation and one other (older
        versions of a database's areas are never read again).
    """

    def __init__(
        self,
        directory: Path,
        kind: str,
        code: Callable[[], str],
        keep: int = 16,
        keep_per_database: int = 2,
    ):
        self.directory = directory
        self.kind = kind
        self.code = code
        self.keep = keep
        self.keep_per_database = keep_per_database

    def named(self, database: str, generation_id: int, stamp: Any, extra: Any = ()) -> Path:
        """The file for ``database`` (see :func:`database_key`), a generation and the
        ``stamp`` of its areas (plus ``extra``: parameters of the build)."""
        version = repr((_FORMAT, generation_id, stamp, extra, self.code()))
        return self.directory / f"{_short(database)}-{generation_id}-{_short(version, 24)}.pkl"

    def load(self, path: Path, build: Callable[[], T], kind: type | tuple[type, ...]) -> T:
        """The object at ``path`` when it reads back as a ``kind``, else ``build()`` (kept)."""
        found = self._read(path, kind)
        if found is None:
            found = build()
            self._write(path, found)
        return found

    def _read(self, path: Path, kind: type | tuple[type, ...] = object) -> Any:
        try:
            with path.open("rb") as file:
                found = pickle.load(file)
        except FileNotFoundError:
            return None
        except Exception as exc:  # truncated, or from another build: rebuilt, not trusted
            log.warning("%s %s unreadable (%s); rebuilding it", self.kind, path.name, exc)
            return None
        if not isinstance(found, kind):
            return None
        with contextlib.suppress(OSError):  # pruned meanwhile by another process: still read
            os.utime(path)  # recently used: pruned last
        return found

    def _write(self, path: Path, found: Any) -> None:
        """Write atomically and keep the newest ``keep`` files (best effort)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            with partial.open("wb") as file:
                pickle.dump(found, file, protocol=pickle.HIGHEST_PROTOCOL)
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
            log.warning("could not keep the %s on disk: %s", self.kind, exc)


def database_key(conn: Connection) -> str:
    """Which database a file belongs to: the URL's host and port and its identity."""
    url = conn.engine.url
    return f"{url.host}:{url.port}/{database_identity(conn)}"


class IndexStore(VersionStore):
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
        super().__init__(directory, "lookup index", _code, keep, keep_per_database)

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexStore:
        return cls(settings.data_dir / "cache" / "index")

    def hierarchy(self, conn: Connection, generation_id: int) -> HierarchyIndex:
        """The index of a generation: read from disk when its areas are unchanged, else built."""
        return self.load(
            self.path(conn, generation_id),
            lambda: build_hierarchy(conn, generation_id),
            HierarchyIndex,
        )

    def path(self, conn: Connection, generation_id: int) -> Path:
        """The file of a generation's index for the areas it has now."""
        stamp = areas_stamp(conn, generation_id, list(ASSIGNED_LEVELS))
        return self.named(database_key(conn), generation_id, stamp)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned meanwhile by another process
        return 0.0


def _short(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def code_stamp(*sources: Path) -> str:
    """A stamp of the ``sources`` (files, or folders of ``.py`` files) and of the libraries
    that pickle what they build."""
    digest = hashlib.sha256()
    for source in sources:
        files = sorted(source.glob("*.py")) if source.is_dir() else [source]
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{sys.version}|{np.__version__}|{shapely.__version__}".encode())
    return digest.hexdigest()[:16]


@cache
def _code() -> str:
    """A stamp of the index code and of the libraries that pickle it."""
    return code_stamp(Path(__file__).resolve().parents[2] / "gis" / "assign")
