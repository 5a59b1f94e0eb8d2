"""Photos of incidents: checked by their first bytes, stored under the data directory.

A photo is accepted only when its content is JPEG, PNG or WebP (the file name and
the browser's declared type are not trusted: a script renamed ``.jpg`` is refused)
and it is at most :data:`MAX_PHOTO_BYTES`. Each is stored as
``<data_dir>/photos/<incident id>/<sha256 prefix>.<ext>``: the name is derived from
the content, so the same photo sent twice is stored once and no name a user chose
ever reaches the file system. Serving checks the incident's scope first
(``app/api/console.py``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from app.errors import PayloadTooLargeError
from gis.errors import ValidationError

__all__ = ["MAX_PHOTOS", "MAX_PHOTO_BYTES", "photo_file", "photo_kind", "photos_of", "store"]

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 4
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


def _folder(root: Path, incident_id: int) -> Path:
    return Path(root) / "photos" / str(int(incident_id))


def store(root: Path, incident_id: int, photos: list[tuple[str, bytes]]) -> list[str]:
    """Write checked photos (:func:`check`); returns their stored names."""
    folder = _folder(root, incident_id)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for kind, data in photos:
        name = f"{hashlib.sha256(data).hexdigest()[:24]}.{kind}"
        path = folder / name
        if not path.exists():
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)  # a reader never sees half a photo
        names.append(name)
    return names


def photos_of(root: Path, incident_id: int) -> list[str]:
    folder = _folder(root, incident_id)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if _NAME.match(p.name))


def photo_file(root: Path, incident_id: int, name: str) -> Path | None:
    """The stored photo ``name`` of the incident, or None (unknown or a malformed name)."""
    if not _NAME.match(name):
        return None
    path = _folder(root, incident_id) / name
    return path if path.is_file() else None
