"""Photos of incidents: checked by their first bytes, stored under the data directory.

A photo is accepted only when its content is JPEG, PNG or WebP (the file name and
the browser's declared type are not trusted: a script renamed ``.jpg`` is refused)
and it is at most :data:`MAX_PHOTO_BYTES`. Each is stored as
``<data_dir>/photos/<incident id>/<sha256 prefix>.<ext>``: the name is derived from
the content, so the same photo sent twice is stored once and no name a user chose
ever reaches the file system. :func:`attach` is the one way photos are added to a
stored incident (the API's upload; the console's report checks and stores the same
way), and :func:`served` the one way they are read: the incident's scope first, for
the console's page and the API's photo route alike.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sqlalchemy import Engine

from app.db import queries
from app.errors import ConflictError, NotFoundError, PayloadTooLargeError
from app.services.scope import check_incident
from app.services.security import Principal
from gis.errors import ValidationError

__all__ = [
    "MAX_INCIDENT_PHOTOS",
    "MAX_PHOTOS",
    "MAX_PHOTO_BYTES",
    "attach",
    "photo_file",
    "photo_kind",
    "photos_of",
    "served",
    "store",
]

MAX_PHOTO_BYTES = 5 * 1024 * 1024
#: Photos in one report or one upload.
MAX_PHOTOS = 4
#: Photos an incident keeps in all: the report's, then those of handling and verification
#: (处置前/处置后); a bound so that one key cannot fill the disk through one incident.
MAX_INCIDENT_PHOTOS = 16
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_NAME = re.compile(r"^[0-9a-f]{24}\.(jpg|png|webp)$")


def photo_kind(data: bytes) -> str | None:
    """``jpg``, ``png`` or ``webp`` from the content's signature; None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check(photos: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``(file name, content)`` pairs as ``(extension, content)``; refuses the batch when
    one is not a JPEG/PNG/WebP image or is too large (nothing is stored then)."""
    if len(photos) > MAX_PHOTOS:
        raise ValidationError(f"照片过多 / at most {MAX_PHOTOS} photos, got {len(photos)}")
    checked = []
    for name, data in photos:
        if len(data) > MAX_PHOTO_BYTES:
            raise PayloadTooLargeError(
                f"照片过大 / photo {name!r} is {len(data) / 1e6:.1f} MB; at most "
                f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB each"
            )
        kind = photo_kind(data)
        if kind is None:
            raise ValidationError(f"照片格式不支持 / {name!r} is not a JPEG, PNG or WebP image")
        checked.append((kind, data))
    return checked


def _name(kind: str, data: bytes) -> str:
    return f"{hashlib.sha256(data).hexdigest()[:24]}.{kind}"


def _folder(root: Path, incident_id: int) -> Path:
    return Path(root) / "photos" / str(int(incident_id))


def store(root: Path, incident_id: int, photos: list[tuple[str, bytes]]) -> list[str]:
    """Write checked photos (:func:`check`); returns their stored names."""
    folder = _folder(root, incident_id)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for kind, data in photos:
        name = _name(kind, data)
        path = folder / name
        if not path.exists():
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)  # a reader never sees half a photo
        names.append(name)
    return names


def photos_of(root: Path, incident_id: int) -> list[str]:
    """The incident's stored photos, oldest first (the first is the report's own photo:
    Open311's ``media_url``); names are content hashes, so the order is the files'."""
    folder = _folder(root, incident_id)
    if not folder.is_dir():
        return []
    found = [(p.stat().st_mtime_ns, p.name) for p in folder.iterdir() if _NAME.match(p.name)]
    return [name for _, name in sorted(found)]


def attach(root: Path, incident_id: int, photos: list[tuple[str, bytes]]) -> list[str]:
    """Check (:func:`check`) and store photos sent for a stored incident; their names.

    The caller has checked that the incident exists and is in the sender's scope. A
    batch that would take the incident past :data:`MAX_INCIDENT_PHOTOS` stores nothing
    (a photo it already has does not count twice).
    """
    checked = check(photos)
    if not checked:
        raise ValidationError("没有照片 / no photo was sent (multipart field `photos`)")
    kept = set(photos_of(root, incident_id))
    new = {_name(kind, data) for kind, data in checked} - kept
    if len(kept) + len(new) > MAX_INCIDENT_PHOTOS:
        raise ConflictError(
            f"照片已满 / incident {incident_id} has {len(kept)} photos; at most "
            f"{MAX_INCIDENT_PHOTOS} are kept per incident"
        )
    return store(root, incident_id, checked)


def served(
    engine: Engine, root: Path, viewer: Principal, incident_id: int, name: str
) -> tuple[Path, str]:
    """The file and media type of photo ``name`` of an incident the viewer may see.

    Raises ``NotFoundError`` (no such incident or photo) or ``PermissionDeniedError``
    (the incident is outside the viewer's scope; checked before the file is looked at).
    """
    with engine.connect() as conn:
        found, grid = queries.incident_grid(conn, incident_id)
    if not found:
        raise NotFoundError(f"no incident {incident_id}")
    check_incident(viewer, grid, incident_id)
    path = photo_file(root, incident_id, name)
    if path is None:
        raise NotFoundError(f"incident {incident_id} has no photo {name[:40]!r}")
    return path, MEDIA_TYPES[path.suffix.lstrip(".")]


def photo_file(root: Path, incident_id: int, name: str) -> Path | None:
    """The stored photo ``name`` of the incident, or None (unknown or a malformed name)."""
    if not _NAME.match(name):
        return None
    path = _folder(root, incident_id) / name
    return path if path.is_file() else None
