"""Users, passwords, sign-in sessions and the lockout of repeated failures.

Passwords are hashed with argon2id (``argon2-cffi``'s :class:`PasswordHasher`,
RFC 9106 parameters): memory-hard, so a stolen table cannot be cracked cheaply.
Only the hash is stored.

A session is a random 256-bit token in the ``gridmap_session`` cookie; the
database keeps only its SHA-256 (like API keys: a random token needs no slow
hash), the user, a CSRF token, the expiry (``GRIDMAP_SESSION_HOURS``) and when
it was last seen (``GRIDMAP_SESSION_IDLE_MINUTES``). Every request checks these
and the user's ``disabled_at`` in the database, so disabling a user, resetting
a password or signing out ends a session at once. Each sign-in creates a new
token (no session fixation) and deletes the one the browser had.

After ``GRIDMAP_LOGIN_MAX_FAILURES`` failed sign-ins in a row the account is
locked for ``GRIDMAP_LOGIN_LOCK_MINUTES``; while locked even the right password
is refused. Unknown names cost one argon2 verification too, so the time of a
failure does not tell whether the name exists.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine

from app.config import ApiSettings
from app.db import repo, users
from app.errors import ConflictError, NotFoundError, NotReadyError
from app.services import audit
from app.services.audit import Actor
from app.services.security import Principal
from gis.codes import validate as validate_code
from gis.errors import ValidationError
from gis.vocabulary import ROLES

__all__ = [
    "MIN_PASSWORD",
    "SessionPolicy",
    "SignIn",
    "check_scope",
    "create_user",
    "end_session",
    "list_users",
    "reset_password",
    "session_principal",
    "set_disabled",
    "sign_in",
]

MIN_PASSWORD = 8
#: Longer passwords are refused: argon2 hashes any length, but a megabyte "password" is abuse.
MAX_PASSWORD = 1024
_USERNAME = re.compile(r"^[\w.@-]{1,64}$")
_DEPARTMENT = re.compile(r"^[\w.-]{1,64}$")


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions live and when failed sign-ins lock an account."""

    lifetime: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=60)
    max_failures: int = 5
    lock: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, api: ApiSettings) -> SessionPolicy:
        return cls(
            lifetime=timedelta(hours=api.session_hours),
            idle=timedelta(minutes=api.session_idle_minutes),
            max_failures=api.login_max_failures,
            lock=timedelta(minutes=api.login_lock_minutes),
        )


@dataclass(frozen=True)
class SignIn:
    """A successful sign-in: the cookie's token (shown once) and the session's CSRF token."""

    token: str
    csrf_token: str
    principal: Principal


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _decoy_hash() -> str:
    """A hash to verify against for unknown names, so they cost what known ones cost."""
    return _hasher().hash(secrets.token_urlsafe(16))


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- checks ------------------------------------------------------------------------------
def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError(f"the password may have at most {MAX_PASSWORD} characters")
    return password


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise ValidationError(
            f"user name {username!r}: 1–64 letters, digits or . _ @ - (no spaces)"
        )
    return username


def check_scope(conn: Connection, area: str | None) -> str | None:
    """``area`` as a unified code of the active generation (any level), or None.

    A scope that names no area would silently show nothing, so it must exist now.
    """
    if area is None:
        return None
    code = validate_code(area)
    generation = repo.active_generation(conn)
    if generation is None:
        raise NotReadyError(
            "no active generation to check the area against: import areas "
            "(gridmap areas import) or load the demo first"
        )
    if code not in repo.area_codes(conn, generation.id):
        raise NotFoundError(
            f"no area {code!r} in the active generation {generation.label!r}; "
            "give a street, community or grid code"
        )
    return code


def _check_department(department: str | None) -> str | None:
    if department is not None and not _DEPARTMENT.match(department):
        raise ValidationError(f"department {department!r}: 1–64 letters, digits, . _ or -")
    return department


# -- management (CLI) ----------------------------------------------------------------------
def create_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    *,
    area: str | None = None,
    department: str | None = None,
    display_name: str | None = None,
    actor: Actor | None = None,
) -> int:
    """Create a user; returns its id.

    Raises
    ------
    ValidationError
        A bad name, role, password or department.
    ConflictError
        The name is taken (whatever its case).
    NotFoundError
        ``area`` is no area of the active generation.
    """
    check_username(username)
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    check_password(password)
    _check_department(department)
    password_hash = _hasher().hash(password)
    with engine.begin() as conn:
        area = check_scope(conn, area)
        if users.user_exists(conn, username):
            raise ConflictError(f"a user {username!r} exists already")
        user_id = users.insert_user(
            conn,
            username=username,
            display_name=display_name,
            role=role,
            area=area,
            department=department,
            password_hash=password_hash,
        )
        audit.record(
            conn,
            actor or Actor.cli(),
            "user.create",
            username,
            detail={"role": role, "area": area, "department": department},
        )
    return user_id


def list_users(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return users.list_users(conn)


def set_disabled(engine: Engine, username: str, disabled: bool, actor: Actor | None = None) -> None:
    """Disable a user (its sessions end at once) or enable it again."""
    with engine.begin() as conn:
        user_id = users.set_disabled(conn, username, disabled)
        if user_id is None:
            raise NotFoundError(f"no user {username!r}; see gridmap users list")
        ended = users.delete_user_sessions(conn, user_id) if disabled else 0
        action = "user.disable" if disabled else "user.enable"
        detail = {"sessions_ended": ended} if disabled else None
        audit.record(conn, actor or Actor.cli(), action, username, detail=detail)


def reset_password(
    engine: Engine, username: str, password: str, actor: Actor | None = None
) -> None:
    """Set a new password; the user's sessions end at once and any lock is lifted."""
    check_password(password)
    password_hash = _hasher().hash(password)
    with engine.begin() as conn:
        user_id = users.set_password(conn, username, password_hash)
        if user_id is None:
            raise NotFoundError(f"no user {username!r}; see gridmap users list")
        ended = users.delete_user_sessions(conn, user_id)
        audit.record(
            conn,
            actor or Actor.cli(),
            "user.reset_password",
            username,
            detail={"sessions_ended": ended},
        )


# -- sign-in ------------------------------------------------------------------------------
def sign_in(
    engine: Engine,
    username: str,
    password: str,
    policy: SessionPolicy,
    *,
    address: str | None = None,
    user_agent: str | None = None,
    previous_token: str | None = None,
) -> SignIn | None:
    """A new session for the right name and password; None otherwise (and audited either way).

    ``previous_token``: the session cookie the browser had; it is ended, so a
    token planted before sign-in never becomes a signed-in session.
    """
    password = password[:MAX_PASSWORD]
    with engine.begin() as conn:
        if previous_token:
            users.delete_session(conn, session_id(previous_token))
        user = users.find_user(conn, username) if _USERNAME.match(username) else None
        reason = _refusal(conn, user, password, policy)
        if reason is not None:
            _record_failure(conn, user, username, reason, policy, address)
            return None
        assert user is not None
        users.record_success(conn, user.id)
        users.delete_dead_sessions(conn, policy.idle)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        users.insert_session(
            conn, session_id(token), user.id, csrf, policy.lifetime, address, user_agent
        )
        principal = _principal(user)
        audit.record(conn, Actor.of(principal), "sign_in", user.username, address=address)
    return SignIn(token, csrf, principal)


def _refusal(conn: Connection, user, password: str, policy: SessionPolicy) -> str | None:
    """Why the sign-in is refused (for the audit log only), or None."""
    hasher = _hasher()
    try:
        hasher.verify(user.password_hash if user is not None else _decoy_hash(), password)
        right = user is not None
    except (VerificationError, InvalidHashError):
        right = False
    if user is None:
        return "unknown user"
    if user.disabled_at is not None:
        return "disabled"
    if user.locked:
        return "locked"
    if not right:
        return "wrong password"
    if hasher.check_needs_rehash(user.password_hash):
        users.rehash_password(conn, user.id, hasher.hash(password))
    return None


def _record_failure(
    conn: Connection,
    user,
    username: str,
    reason: str,
    policy: SessionPolicy,
    address: str | None,
) -> None:
    detail: dict = {"reason": reason}
    if reason == "wrong password":
        detail["locked"] = users.record_failure(conn, user.id, policy.max_failures, policy.lock)
    audit.record(
        conn,
        Actor.anonymous(),
        "sign_in",
        username[:64],
        outcome="failed",
        address=address,
        detail=detail,
    )


def _principal(row) -> Principal:
    return Principal(
        key_id=None,
        prefix=row.username,
        role=row.role,
        name=row.display_name,
        area=row.area,
        user_id=row.user_id if hasattr(row, "user_id") else row.id,
        department=row.department,
    )


@dataclass(frozen=True)
class LiveSession:
    """A checked session: who, and the CSRF token its forms must carry."""

    principal: Principal
    csrf_token: str


def session_principal(engine: Engine, token: str, policy: SessionPolicy) -> LiveSession | None:
    """The live session of a cookie's token; None if unknown, expired, idle or its user disabled."""
    sid = session_id(token)
    with engine.connect() as conn:
        row = users.live_session(conn, sid, policy.idle)
        if row is None:
            return None
        if row.stale:  # last-seen is kept to the minute: one write a minute, not per request
            users.touch_session(conn, sid)
            conn.commit()
    return LiveSession(_principal(row), row.csrf_token)


def end_session(engine: Engine, token: str, actor: Actor, address: str | None = None) -> bool:
    """Sign out: delete the session (audited). False if it was not live."""
    with engine.begin() as conn:
        if users.delete_session(conn, session_id(token)) is None:
            return False
        audit.record(conn, actor, "sign_out", actor.label, address=address)
    return True
