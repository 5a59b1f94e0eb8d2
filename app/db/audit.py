"""The audit log: who did what, when, from which address, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from app.db.models import AuditLog

AUDIT_LOG = cast(Table, AuditLog.__table__)
COLUMNS = (
    "id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "target",
    "outcome",
    "status",
    "address",
    "detail",
)


@dataclass(frozen=True)
class AuditFilter:
    """Rows with ``since <= at < until``, of an actor (label) and an action, when given."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None


def insert_entry(conn: Connection, **values: Any) -> int:
    return conn.execute(insert(AUDIT_LOG).values(**values).returning(AUDIT_LOG.c.id)).scalar_one()


def finish_entry(conn: Connection, entry_id: int, **values: Any) -> None:
    """Complete a row written before the work it records (API writes)."""
    conn.execute(update(AUDIT_LOG).where(AUDIT_LOG.c.id == entry_id).values(**values))


def list_entries(conn: Connection, where: AuditFilter, limit: int | None = None) -> list[dict]:
    """Matching rows, oldest first."""
    query = select(*[AUDIT_LOG.c[c] for c in COLUMNS]).order_by(AUDIT_LOG.c.at, AUDIT_LOG.c.id)
    if where.since is not None:
        query = query.where(AUDIT_LOG.c.at >= where.since)
    if where.until is not None:
        query = query.where(AUDIT_LOG.c.at < where.until)
    if where.actor:
        query = query.where(AUDIT_LOG.c.actor_label == where.actor)
    if where.action:
        query = query.where(AUDIT_LOG.c.action == where.action)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]
