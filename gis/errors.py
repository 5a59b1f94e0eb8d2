"""One exception hierarchy for the pure core.

`app/` maps these to HTTP status codes in one place (see ``app/api/errors.py``),
so every error raised here must carry a message a user can act on.
"""

from __future__ import annotations

__all__ = [
    "GridmapError",
    "InvalidCodeError",
    "CRSError",
    "ValidationError",
    "InfeasibleError",
]


class GridmapError(Exception):
    """Base of every error gridmap raises on purpose."""


class InvalidCodeError(GridmapError, ValueError):
    """A unified code that is malformed; the message names the bad segment."""


class CRSError(GridmapError, ValueError):
    """An unknown coordinate system or coordinates that cannot be converted."""


class ValidationError(GridmapError, ValueError):
    """Input data rejected as a whole; ``problems`` lists every reason found.

    Parameters
    ----------
    message : str
        One-line summary.
    problems : list of dict, optional
        One entry per problem, each with at least ``row`` and ``reason``.
    """

    def __init__(self, message: str, problems: list[dict] | None = None):
        super().__init__(message)
        self.problems: list[dict] = list(problems or [])

    def __str__(self) -> str:  # the summary plus the count, details are in .problems
        base = super().__str__()
        return f"{base} ({len(self.problems)} problem(s))" if self.problems else base


class InfeasibleError(GridmapError, ValueError):
    """A request no solution can meet; the message states the feasible range."""
