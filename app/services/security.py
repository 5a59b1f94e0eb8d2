"""API keys with roles: created once, stored hashed, checked on every protected request.

A key is ``gm_`` followed by 43 URL-safe characters (256 random bits). Only its
SHA-256 and a short prefix (for listing) are stored. A slow password hash would
protect low-entropy secrets; a 256-bit random key cannot be guessed, so a plain
hash is as safe and costs microseconds on each request.

Roles are ordered: ``viewer`` < ``operator`` < ``admin``; a role may do what the
roles below it may.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine

from app.db import keys
from app.errors import NotFoundError
from app.services import audit
from app.services.audit import Actor
from gis.errors import GridmapError
from gis.vocabulary import ROLES

__all__ = [
    "ROLES",
    "Principal",
    "authenticate",
    "create_api_key",
    "hash_key",
    "list_api_keys",
    "revoke_api_key",
    "role_allows",
]

KEY_PREFIX = "gm_"
_PREFIX_CHARS = len(KEY_PREFIX) + 6  # "gm_" + 6 characters: enough to tell keys apart


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key or a signed-in user, with a role and an area scope.

    ``area`` is a unified code (street, community or grid): the caller sees the
    incidents whose grid code starts with it. None means the whole territory,
    including the incidents outside every grid.
    """

    key_id: int | None
    prefix: str
    role: str
    name: str | None = None
    area: str | None = None
    user_id: int | None = None
    department: str | None = None

    def allows(self, role: str) -> bool:
        return role_allows(self.role, role)

    @property
    def caller(self) -> str:
        """One name per key or user (``key:3``, ``user:5``): what per-caller limits count."""
        return f"user:{self.user_id}" if self.user_id is not None else f"key:{self.key_id}"

    def sees(self, grid_code: str | None) -> bool:
        """True when an incident of ``grid_code`` (None: outside every grid) is in scope."""
        if self.area is None:
            return True
        return grid_code is not None and grid_code.startswith(self.area)


def role_allows(have: str, need: str) -> bool:
    """True when role ``have`` may do what needs role ``need``."""
    return ROLES.index(have) >= ROLES.index(need)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(
    engine: Engine,
    role: str,
    name: str | None = None,
    area: str | None = None,
    actor: Actor | None = None,
) -> str:
    """Create a key with ``role`` and an optional area scope; returns the key in clear
    (shown once, never stored). The creation is audited.

    Raises
    ------
    GridmapError
        If ``role`` is not one of :data:`ROLES`.
    NotFoundError
        If ``area`` is not an area of the active generation (see ``auth.check_scope``).
    """
    from app.services.auth import check_scope

    if role not in ROLES:
        raise GridmapError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        area = check_scope(conn, area)
        key_id = keys.insert_key(conn, hash_key(key), key[:_PREFIX_CHARS], role, name, area)
        audit.record(
            conn,
            actor or Actor.cli(),
            "key.create",
            f"key {key_id} {key[:_PREFIX_CHARS]}",
            detail={"role": role, "area": area, "name": name},
        )
    return key


def list_api_keys(engine: Engine) -> list[dict]:
    """Every key (revoked ones too) as dicts: id, prefix, role, area, name, created_at,
    revoked_at."""
    with engine.connect() as conn:
        return keys.list_keys(conn)


def revoke_api_key(engine: Engine, key_id: int, actor: Actor | None = None) -> None:
    """Revoke a key at once (audited); revoking it again keeps the first revocation time.

    Raises
    ------
    NotFoundError
        If no key has id ``key_id``.
    """
    with engine.begin() as conn:
        if not keys.revoke_key(conn, key_id):
            raise NotFoundError(f"no API key with id {key_id}")
        audit.record(conn, actor or Actor.cli(), "key.revoke", f"key {key_id}")


def authenticate(engine: Engine, key: str) -> Principal | None:
    """The principal of a valid key; None for an unknown or revoked key."""
    with engine.connect() as conn:
        row = keys.active_key(conn, hash_key(key))
    return None if row is None else Principal(row.id, row.prefix, row.role, row.name, row.area)
