"""Stored API keys: only a SHA-256 of each key and a short prefix to tell them apart."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Row, Table, func, insert, select, update

from app.db.models import ApiKey

API_KEY = cast(Table, ApiKey.__table__)
LISTED_COLUMNS = ("id", "prefix", "role", "area", "name", "created_at", "revoked_at")


def insert_key(
    conn: Connection,
    key_hash: str,
    prefix: str,
    role: str,
    name: str | None,
    area: str | None = None,
) -> int:
    return conn.execute(
        insert(API_KEY)
        .values(key_hash=key_hash, prefix=prefix, role=role, name=name, area=area)
        .returning(API_KEY.c.id)
    ).scalar_one()


def list_keys(conn: Connection) -> list[dict]:
    """Every key, revoked ones too, oldest first (never the hash)."""
    query = select(*[API_KEY.c[c] for c in LISTED_COLUMNS]).order_by(API_KEY.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def revoke_key(conn: Connection, key_id: int) -> bool:
    """Revoke a key unless already revoked (the first time stays); False if there is no such key."""
    if conn.execute(select(API_KEY.c.id).where(API_KEY.c.id == key_id)).first() is None:
        return False
    conn.execute(
        update(API_KEY)
        .where(API_KEY.c.id == key_id, API_KEY.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return True


def active_key(conn: Connection, key_hash: str) -> Row | None:
    """(id, prefix, role, name, area) of the unrevoked key with this hash."""
    return conn.execute(
        select(
            API_KEY.c.id, API_KEY.c.prefix, API_KEY.c.role, API_KEY.c.name, API_KEY.c.area
        ).where(API_KEY.c.key_hash == key_hash, API_KEY.c.revoked_at.is_(None))
    ).first()
