"""Every write through the API goes into the audit log — refused ones too.

:class:`AuditMiddleware` handles each unsafe request (POST, PUT, PATCH, DELETE)
in two steps:

1. **Before** the request runs it records an entry: the method and path, the
   caller's address, outcome ``pending``. If that insert fails the request is
   answered 503 and never runs: a write without its audit record is worse than
   a write refused, and the insert fails mostly when the database is down, when
   the write would fail anyway.
2. **After** the response it completes the entry with who it was (the principal
   ``get_principal`` left in ``request.state``: a user, a key, or anonymous with
   the prefix of a refused key) and the status (ok, failed for 4xx, denied for
   401/403, error for 5xx). The response has gone by then; if this update fails
   the entry stays ``pending`` — still a record that the write was attempted —
   and the failure is logged.

Sign-in and sign-out record their own entries (with the user name);
``POST /lookup`` is a read sent as POST for its size and is not recorded.
"""

from __future__ import annotations

import logging

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.session import UNSAFE_METHODS
from app.services import audit
from app.services.audit import Actor

__all__ = ["NOT_AUDITED", "AuditMiddleware"]

log = logging.getLogger("gridmap.audit")

#: Unsafe-method paths not recorded here: reads by POST, and what records itself.
NOT_AUDITED = frozenset({"/lookup", "/login", "/logout"})


class AuditMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            return await self.app(scope, receive, send)
        path = _path(scope)
        state = getattr(scope["app"].state, "gridmap", None)
        if path in NOT_AUDITED or state is None:
            return await self.app(scope, receive, send)
        client = scope.get("client")
        address = client[0] if client else None
        try:
            entry = await run_in_threadpool(
                audit.start, state.engine, f"api {scope['method']}", path, address
            )
        except SQLAlchemyError:
            log.warning("audit log not writable; %s %s refused", scope["method"], path)
            retry = str(state.api.retry_after_seconds)
            response = JSONResponse(
                {
                    "detail": "the database cannot record this write in the audit log right "
                    "now; nothing was changed, try again later"
                },
                status_code=503,
                headers={"Retry-After": retry},
            )
            return await response(scope, receive, send)

        status = 500  # a request that ends without a response start is an error
        shared = scope.setdefault("state", {})  # request.state of the routes is this dict

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            actor = _actor(shared)
            try:
                await run_in_threadpool(audit.finish, state.engine, entry, actor, status)
            except SQLAlchemyError:
                log.exception("audit entry %s of %s %s left pending", entry, scope["method"], path)


def _path(scope: Scope) -> str:
    """The path below the app's root (a proxy prefix is not part of what was written)."""
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _actor(state: dict) -> Actor:
    principal = state.get("principal")
    if principal is not None:
        return Actor.of(principal)
    credential = state.get("credential")
    return Actor.anonymous(f"{credential}…" if credential else None)
