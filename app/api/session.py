"""The session cookie and CSRF checks of signed-in browsers (the HTTP side of ``services.auth``).

Cookies (both ``HttpOnly``, ``SameSite=Lax``, ``Path=/``; ``Secure`` when the
request came over HTTPS, directly or as ``X-Forwarded-Proto: https`` from a proxy):

- ``gridmap_session``: the session token; ``Max-Age`` = ``GRIDMAP_SESSION_HOURS``
  (the server checks expiry and idleness itself; the browser's copy is a hint).
- ``gridmap_login_csrf``: a random token the sign-in form repeats (double submit),
  so another site cannot sign a browser into an account of its choosing.

Every unsafe request (POST, PUT, PATCH, DELETE) authenticated by the session
cookie must carry the session's CSRF token as the form field ``csrf_token`` or
the header ``X-CSRF-Token``; requests with an API key need none (a browser never
adds a key by itself, so another site cannot forge one).
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool

from app.config import ApiSettings
from app.errors import PermissionDeniedError
from app.services import auth
from app.services.auth import SessionPolicy
from app.services.security import Principal

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "UNSAFE_METHODS",
    "client_address",
    "cookie_session",
    "forget_session",
    "is_https",
    "remember_session",
]

SESSION_COOKIE = "gridmap_session"
LOGIN_CSRF_COOKIE = "gridmap_login_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def policy(api: ApiSettings) -> SessionPolicy:
    return SessionPolicy.from_settings(api)


def is_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (a proxy in front says so in a header)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def client_address(request: Request) -> str | None:
    """The caller's address as the server sees it (uvicorn's --proxy-headers sets it
    from X-Forwarded-For for trusted proxies; we never trust the header ourselves)."""
    return request.client.host if request.client else None


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def remember_session(response: Response, request: Request, token: str, api: ApiSettings) -> None:
    _cookie(response, request, SESSION_COOKIE, token, int(api.session_hours * 3600))


def forget_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def login_csrf(request: Request) -> str:
    """The sign-in form's token: the browser's cookie if it has a sane one, else a new one."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return token if 32 <= len(token) <= 64 else secrets.token_urlsafe(32)


def remember_login_csrf(response: Response, request: Request, token: str) -> None:
    _cookie(response, request, LOGIN_CSRF_COOKIE, token, 3600)


def tokens_match(sent: str | None, expected: str | None) -> bool:
    if not sent or not expected:
        return False
    return secrets.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


async def cookie_session(request: Request, engine, api: ApiSettings) -> Principal | None:
    """The signed-in user of the cookie, or None; checks CSRF on unsafe methods.

    Raises
    ------
    PermissionDeniedError
        An unsafe request with a live session but without its CSRF token.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    live = await run_in_threadpool(auth.session_principal, engine, token, policy(api))
    if live is None:
        return None  # expired, idle, signed out or disabled: anonymous from now on
    request.state.csrf_token = live.csrf_token
    if request.method in UNSAFE_METHODS and not tokens_match(
        await _sent_csrf(request), live.csrf_token
    ):
        raise PermissionDeniedError(
            "the CSRF token is missing or wrong: reload the page and try again "
            "(scripts send the X-CSRF-Token header, or use an API key)"
        )
    return live.principal


async def _sent_csrf(request: Request) -> str | None:
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(_FORMS):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent
