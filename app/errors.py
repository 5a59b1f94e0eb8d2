"""The service's exceptions: one hierarchy rooted in ``gis.errors.GridmapError``.

Raised by ``app/db``, ``app/services`` and the routers alike; only
``app/api/errors.py`` knows which HTTP status each becomes, so a service stays
usable from the CLI and the map builders without importing the HTTP layer.
"""

from __future__ import annotations

from gis.errors import GridmapError

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "DatabaseUnavailableError",
    "IllegalTransitionError",
    "NotFoundError",
    "NotReadyError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "StaleVersionError",
    "TooManyRequestsError",
]


class NotFoundError(GridmapError, LookupError):
    """A generation, area, incident, plan or key that does not exist."""


class AuthenticationError(GridmapError):
    """No API key, or one that is unknown or revoked."""


class PermissionDeniedError(GridmapError):
    """A valid key whose role is too weak for the request."""


class ConflictError(GridmapError):
    """The request is well-formed but the current state forbids it."""


class IllegalTransitionError(ConflictError):
    """A status change the closed loop does not allow; the message says which are."""


class StaleVersionError(ConflictError):
    """An action on an incident version someone else has changed since; ``current`` says
    what it is now (status, version, the last step and who took it)."""

    def __init__(self, message: str, current: dict) -> None:
        super().__init__(message)
        self.current = current


class NotReadyError(ConflictError):
    """No active generation (or one without grids) to answer from yet."""


class PayloadTooLargeError(GridmapError):
    """A request over a configured size bound (body bytes, points per lookup)."""


class TooManyRequestsError(GridmapError):
    """More work than a configured bound allows at once (e.g. redesign jobs per key)."""


class DatabaseUnavailableError(GridmapError):
    """The database cannot be reached right now; the request may be retried later."""
