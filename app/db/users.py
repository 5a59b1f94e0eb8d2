"""Users and their sign-in sessions: the SQL of ``app_user`` and ``user_session``.

Times come from the database (``now()``), so every process — the web app and the
CLI — judges expiry and lockout by the same clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from sqlalchemy import Connection, Row, Table, case, delete, func, insert, select, update

from app.db.models import AppUser, UserSession

APP_USER = cast(Table, AppUser.__table__)
USER_SESSION = cast(Table, UserSession.__table__)
LISTED_COLUMNS = (
    "id",
    "username",
    "display_name",
    "role",
    "area",
    "department",
    "disabled_at",
    "locked_until",
    "failed_attempts",
    "created_at",
    "password_changed_at",
)


def insert_user(conn: Connection, **values) -> int:
    return conn.execute(insert(APP_USER).values(**values).returning(APP_USER.c.id)).scalar_one()


def _by_name(username: str):
    return func.lower(APP_USER.c.username) == username.lower()


def user_exists(conn: Connection, username: str) -> bool:
    return conn.execute(select(APP_USER.c.id).where(_by_name(username))).first() is not None


def find_user(conn: Connection, username: str) -> Row | None:
    """Every column of the user (the hash too), and whether it is locked now."""
    locked = func.coalesce(APP_USER.c.locked_until > func.now(), False).label("locked")
    return conn.execute(select(APP_USER, locked).where(_by_name(username))).first()


def list_users(conn: Connection) -> list[dict]:
    """Every user, disabled ones too, by name (never the hash)."""
    query = select(*[APP_USER.c[c] for c in LISTED_COLUMNS]).order_by(
        func.lower(APP_USER.c.username)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def set_disabled(conn: Connection, username: str, disabled: bool) -> int | None:
    """Disable (keeping the first time) or enable a user; its id, None if there is none."""
    value = func.coalesce(APP_USER.c.disabled_at, func.now()) if disabled else None
    return conn.execute(
        update(APP_USER)
        .where(_by_name(username))
        .values(disabled_at=value)
        .returning(APP_USER.c.id)
    ).scalar_one_or_none()


def set_password(conn: Connection, username: str, password_hash: str) -> int | None:
    """A new hash; clears failures and any lock. The user's id, None if there is none."""
    return conn.execute(
        update(APP_USER)
        .where(_by_name(username))
        .values(
            password_hash=password_hash,
            password_changed_at=func.now(),
            failed_attempts=0,
            locked_until=None,
        )
        .returning(APP_USER.c.id)
    ).scalar_one_or_none()


def rehash_password(conn: Connection, user_id: int, password_hash: str) -> None:
    """Store a hash with today's parameters (same password, so no session ends)."""
    conn.execute(
        update(APP_USER).where(APP_USER.c.id == user_id).values(password_hash=password_hash)
    )


def record_failure(conn: Connection, user_id: int, max_failures: int, lock: timedelta) -> bool:
    """Count a failed sign-in; at ``max_failures`` lock the user for ``lock``. True if locked now.

    The count starts again after a lock, so each lock period is followed by
    ``max_failures`` more tries (and another lock), never an unbounded series.
    """
    failures = APP_USER.c.failed_attempts + 1
    reached = failures >= max_failures
    row = conn.execute(
        update(APP_USER)
        .where(APP_USER.c.id == user_id)
        .values(
            failed_attempts=case((reached, 0), else_=failures),
            locked_until=case((reached, func.now() + lock), else_=APP_USER.c.locked_until),
        )
        .returning(func.coalesce(APP_USER.c.locked_until > func.now(), False))
    ).first()
    return bool(row and row[0])


def record_success(conn: Connection, user_id: int) -> None:
    conn.execute(
        update(APP_USER)
        .where(APP_USER.c.id == user_id)
        .values(failed_attempts=0, locked_until=None)
    )


# -- sessions ------------------------------------------------------------------------------
def insert_session(
    conn: Connection,
    session_id: str,
    user_id: int,
    csrf_token: str,
    lifetime: timedelta,
    address: str | None,
    user_agent: str | None,
) -> None:
    conn.execute(
        insert(USER_SESSION).values(
            id=session_id,
            user_id=user_id,
            csrf_token=csrf_token,
            expires_at=func.now() + lifetime,
            address=address,
            user_agent=user_agent,
        )
    )


def live_session(conn: Connection, session_id: str, idle: timedelta) -> Row | None:
    """The session and its user, if neither expired, idle too long, nor disabled.

    Columns: session id, csrf_token, last_seen_at, stale (last seen over a minute
    ago), and the user's id, username, display_name, role, area, department.
    """
    stale = (USER_SESSION.c.last_seen_at < func.now() - timedelta(minutes=1)).label("stale")
    return conn.execute(
        select(
            USER_SESSION.c.id,
            USER_SESSION.c.csrf_token,
            stale,
            APP_USER.c.id.label("user_id"),
            APP_USER.c.username,
            APP_USER.c.display_name,
            APP_USER.c.role,
            APP_USER.c.area,
            APP_USER.c.department,
        )
        .join(APP_USER, APP_USER.c.id == USER_SESSION.c.user_id)
        .where(
            USER_SESSION.c.id == session_id,
            USER_SESSION.c.expires_at > func.now(),
            USER_SESSION.c.last_seen_at > func.now() - idle,
            APP_USER.c.disabled_at.is_(None),
        )
    ).first()


def touch_session(conn: Connection, session_id: str) -> None:
    conn.execute(
        update(USER_SESSION).where(USER_SESSION.c.id == session_id).values(last_seen_at=func.now())
    )


def delete_session(conn: Connection, session_id: str) -> int | None:
    """Delete one session; the user's id, None if there was none."""
    return conn.execute(
        delete(USER_SESSION)
        .where(USER_SESSION.c.id == session_id)
        .returning(USER_SESSION.c.user_id)
    ).scalar_one_or_none()


def delete_user_sessions(conn: Connection, user_id: int) -> int:
    return conn.execute(delete(USER_SESSION).where(USER_SESSION.c.user_id == user_id)).rowcount


def delete_dead_sessions(conn: Connection, idle: timedelta) -> int:
    """Remove expired and idle sessions (they are refused anyway; this keeps the table small)."""
    return conn.execute(
        delete(USER_SESSION).where(
            (USER_SESSION.c.expires_at <= func.now())
            | (USER_SESSION.c.last_seen_at <= func.now() - idle)
        )
    ).rowcount
