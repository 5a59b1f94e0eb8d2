"""Browser hygiene on every response: security headers, and ``OPTIONS`` with a true ``Allow``.

The map pages are folium's: each carries inline ``<script>`` blocks with per-page
random ids, and Leaflet and folium set inline styles. Hashes would have to be
computed per built page (and per cached variant) and would still not cover the
``style`` attributes Leaflet writes, so the policy allows ``'unsafe-inline'``
for scripts and styles — and nothing else: every script and stylesheet comes
from this server (``'self'``), never a CDN; no ``eval``, no plugins, no framing.
Images may come from a configured basemap tile server, hence ``img-src`` is open.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "LOCAL_ONLY_POLICY",
    "SecurityHeadersMiddleware",
    "content_security_policy",
]


def content_security_policy(images: str = "'self' data: blob: http: https:") -> str:
    """The policy of the HTML pages; ``images``: where images may come from."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {images}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


#: The map pages' policy: images from anywhere, for a configured basemap tile server.
CONTENT_SECURITY_POLICY = content_security_policy()
#: Pages without a basemap (the API docs): images from this server only.
LOCAL_ONLY_POLICY = content_security_policy("'self' data: blob:")
_EVERY_RESPONSE = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HTML_ONLY = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]


class SecurityHeadersMiddleware:
    """Add the security headers; answer a plain ``OPTIONS`` with the path's methods."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS" and not _is_preflight(scope):
            return await _options(scope, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_EVERY_RESPONSE)
                if _is_html(headers) and not _has(headers, b"content-security-policy"):
                    headers.extend(_HTML_ONLY)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_preflight(scope: Scope) -> bool:
    # CORS preflights belong to the CORS middleware (when origins are configured).
    return any(name == b"access-control-request-method" for name, _ in scope["headers"])


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(n.lower() == name for n, _ in headers)


async def _options(scope: Scope, send: Send) -> None:
    """204 with ``Allow`` listing every method some route serves on this path; 404 if none."""
    routes = scope["app"].router.routes
    methods = {
        method
        for method in _METHODS
        for route in routes
        if route.matches({**scope, "method": method})[0] == Match.FULL
    }
    if not methods:
        status, headers = 404, [(b"content-type", b"application/json")]
        body = b'{"detail":"Not Found"}'
    else:
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        status, headers, body = 204, [(b"allow", allow.encode())], b""
    headers.extend(_EVERY_RESPONSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
