"""The audit log: sign-ins, sign-outs, user and key management, and every API write.

Each entry says who (an :class:`Actor`: a user, an API key, the command line or an
anonymous caller), when (the database's clock), what (an action such as
``sign_in``, ``user.disable`` or ``POST /incidents``, a target and details),
from which address, and the outcome (``ok``, ``failed``, ``denied``, ``error``).

Management actions are recorded in the same transaction as the change, so one
never exists without the other. API writes are recorded by
:class:`app.api.audit.AuditMiddleware` *before* the request runs and completed
with its status afterwards (see there why).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from app.db import audit as audit_db
from app.db.audit import AuditFilter

if TYPE_CHECKING:  # security records key management here: no import cycle at run time
    from app.services.security import Principal

__all__ = ["Actor", "AuditFilter", "finish", "list_entries", "record", "start"]


@dataclass(frozen=True)
class Actor:
    """Who acted: ``kind`` is user, key, cli or anonymous."""

    kind: str
    id: int | None
    label: str | None

    @classmethod
    def of(cls, principal: Principal | None) -> Actor:
        if principal is None:
            return cls.anonymous()
        if principal.user_id is not None:
            return cls("user", principal.user_id, principal.prefix)
        return cls("key", principal.key_id, principal.prefix)

    @classmethod
    def cli(cls) -> Actor:
        """The operating-system account running the command (the CLI has no sign-in)."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers)
            who = None
        return cls("cli", None, who)

    @classmethod
    def anonymous(cls, label: str | None = None) -> Actor:
        return cls("anonymous", None, label)


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    target: str | None,
    *,
    outcome: str = "ok",
    address: str | None = None,
    detail: dict[str, Any] | None = None,
    status: int | None = None,
) -> int:
    """Add an entry inside the caller's transaction; its id."""
    return audit_db.insert_entry(
        conn,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action[:64],
        target=target,
        outcome=outcome,
        address=address,
        detail=detail,
        status=status,
    )


def start(engine: Engine, action: str, target: str | None, address: str | None) -> int:
    """Record a write before it runs (outcome ``pending``); its id for :func:`finish`."""
    with engine.begin() as conn:
        return record(conn, Actor.anonymous(), action, target, outcome="pending", address=address)


def finish(engine: Engine, entry_id: int, actor: Actor, status: int) -> None:
    """Complete the entry of a write with who it was and how it ended."""
    with engine.begin() as conn:
        audit_db.finish_entry(
            conn,
            entry_id,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label,
            outcome=outcome_of(status),
            status=status,
        )


def outcome_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    if status >= 500:
        return "error"
    return "failed" if status >= 400 else "ok"


def list_entries(engine: Engine, where: AuditFilter, limit: int | None = None) -> list[dict]:
    with engine.connect() as conn:
        return audit_db.list_entries(conn, where, limit)
