"""Sign-in and sign-out pages: ``GET /login``, ``POST /login``, ``POST /logout``.

The page is Chinese first with English labels. A failed sign-in says only that
it failed — never whether the name or the password was wrong, or that the
account is locked (that would tell a guesser which names exist). ``next`` is
followed only when it is a path on this site, so the page cannot be used to
send people elsewhere (no open redirect).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import StateDep
from app.api.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    client_address,
    cookie_session,
    forget_session,
    login_csrf,
    policy,
    remember_login_csrf,
    remember_session,
    tokens_match,
)
from app.pages import render
from app.services import auth
from app.services.audit import Actor
from app.services.security import Principal

__all__ = ["router", "safe_next"]

router = APIRouter(tags=["sign-in"], include_in_schema=False)

DEFAULT_NEXT = "/map"
FAILED = (
    "登录失败：用户名或密码不正确（连续多次失败后账户将暂时锁定）。"
    "Sign-in failed: wrong user name or password (repeated failures lock the account for a while)."
)
EXPIRED_FORM = "页面已过期，请重新登录。The form expired: please sign in again."
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target: str | None, root: str = "") -> str:
    """``target`` if it is a path on this site, else the map: never another host.

    ``//host``, ``/\\host``, ``https://host`` and anything with control characters
    or backslashes (which browsers read as slashes) are refused.
    """
    if not target or len(target) > 2000 or _UNSAFE_CHARS.search(target):
        return root + DEFAULT_NEXT
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return root + DEFAULT_NEXT
    return target


def _page(
    request: Request,
    *,
    next_: str,
    status: int = 200,
    error: str | None = None,
    username: str = "",
    user: Principal | None = None,
) -> HTMLResponse:
    """The sign-in form; for a signed-in user also who it is and a sign-out button
    (the form stays: signing in as someone else ends the current session)."""
    csrf = login_csrf(request)
    page = render(
        "login.html",
        root=request.scope.get("root_path", ""),
        next=next_,
        error=error,
        username=username,
        user=user,
        csrf_token=csrf,
        session_csrf=getattr(request.state, "csrf_token", None) if user else None,
    )
    response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
    remember_login_csrf(response, request, csrf)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request,
    state: StateDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,  # noqa: A002 - the form's name
) -> HTMLResponse:
    """The sign-in form; signed-in users also see who they are and a sign-out button."""
    user = await cookie_session(request, state.engine, state.api)
    root = request.scope.get("root_path", "")
    return _page(request, next_=safe_next(next, root), user=user)


@router.post("/login")
async def login(
    request: Request,
    state: StateDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",  # noqa: A002 - the form's name
) -> Response:
    """Check the name and password; on success a new session and a redirect to ``next``."""
    root = request.scope.get("root_path", "")
    target = safe_next(next, root)
    if not tokens_match(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _page(request, next_=target, status=403, error=EXPIRED_FORM, username=username)
    signed = await run_in_threadpool(
        auth.sign_in,
        state.engine,
        username.strip(),
        password,
        policy(state.api),
        address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:400] or None,
        previous_token=request.cookies.get(SESSION_COOKIE),
    )
    if signed is None:
        return _page(request, next_=target, status=401, error=FAILED, username=username)
    response = RedirectResponse(target, status_code=303)
    remember_session(response, request, signed.token, state.api)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, state: StateDep) -> Response:
    """End the session (the form carries its CSRF token) and go back to the sign-in page."""
    user = await cookie_session(request, state.engine, state.api)
    root = request.scope.get("root_path", "")
    response = RedirectResponse(f"{root}/login", status_code=303)
    token = request.cookies.get(SESSION_COOKIE)
    if user is not None and token:
        await run_in_threadpool(
            auth.end_session, state.engine, token, Actor.of(user), client_address(request)
        )
    forget_session(response, request)
    return response
