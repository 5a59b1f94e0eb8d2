"""The one place where errors become HTTP responses, always as ``{"detail": ...}``.

``gis.errors.GridmapError`` is the base of every error raised on purpose (the
service's own classes are in ``app/errors.py``). :data:`HTTP_STATUS` maps the
hierarchy to status codes: the most specific class listed wins.
Anything else is a bug and becomes a 500 without internals in the body, with
``Connection: close`` so a keep-alive client is not left with a dead connection.
Database errors never reach a client as database text: a refused value is a 422,
a broken constraint a 409, and an unreachable database a 503 with ``Retry-After``,
logged once per outage by :class:`DatabaseOutage` rather than once per request.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from app.errors import (
    AuthenticationError,
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    StaleVersionError,
    TooManyRequestsError,
)
from gis.errors import CRSError, GridmapError, InfeasibleError, InvalidCodeError, ValidationError

log = logging.getLogger("gridmap.api")

__all__ = [
    "DATABASE_DOWN",
    "DatabaseOutage",
    "ErrorBody",
    "HTTP_STATUS",
    "ERROR_RESPONSES",
    "install_error_handlers",
    "status_for",
]


#: Error class → HTTP status; looked up along the exception's MRO.
HTTP_STATUS: dict[type[Exception], int] = {
    NotFoundError: 404,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    TooManyRequestsError: 429,
    DatabaseUnavailableError: 503,
    ValidationError: 422,
    InvalidCodeError: 422,
    CRSError: 422,
    InfeasibleError: 422,
    GridmapError: 400,
}


class ErrorBody(BaseModel):
    """Every error response."""

    detail: str | list[dict[str, Any]] = Field(
        description="What went wrong: a sentence, or for malformed requests one entry per "
        "problem with its location (`loc`), message (`msg`) and `type`."
    )
    problems: list[dict[str, Any]] | None = Field(
        default=None, description="Rows or items at fault, when the input was a batch."
    )
    current: dict[str, Any] | None = Field(
        default=None,
        description="A stale incident version (409): the incident as it is now (status, "
        "handling level, version, the last step, when and by whom).",
    )


def _error(description: str) -> dict[str, Any]:
    # Spelled out as application/json: with "model", FastAPI would document errors under
    # the route's own media type (application/geo+json for the feature routes).
    return {
        "description": description,
        "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
    }


#: OpenAPI documentation of the error responses every route may give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Bad request: a body that cannot be parsed at all."),
    401: _error("No API key, or an unknown or revoked one."),
    403: _error("The API key's role is too weak for this request."),
    404: _error("No such resource."),
    409: _error(
        "The request conflicts with the current state (e.g. an illegal status "
        "change, or no active generation)."
    ),
    413: _error("Request body or batch larger than the configured bound."),
    422: _error("Malformed or invalid parameters or body."),
    429: _error("Too much work at once (e.g. redesign jobs per key); retry later."),
    503: _error("The database is unreachable; retry after `Retry-After` seconds."),
}

#: Errors meaning the database cannot be reached (down, restarting, pool exhausted).
DATABASE_DOWN: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    DatabaseUnavailableError,
)


class DatabaseOutage:
    """Whether the database is down, logged once when it goes and once when it returns."""

    def __init__(self, retry_after: int = 5) -> None:
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._since: float | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def went_down(self, error: BaseException) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = type(getattr(error, "orig", None) or error).__name__
        log.error(
            "database down since %s (%s); answering 503 until it is back",
            datetime.now(UTC).isoformat(timespec="seconds"),
            reason,
        )

    def came_back(self) -> None:
        if self._since is None:  # the usual case: one attribute read, no lock
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("database back after %.1f s", time.monotonic() - since)


def status_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers of every error class on ``app``."""
    app.add_exception_handler(GridmapError, _gridmap_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for error in DATABASE_DOWN:
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(sa_exc.DataError, _data_error)
    app.add_exception_handler(sa_exc.IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unexpected_error)


def outage(app: Any) -> DatabaseOutage:
    """The app's outage tracker (made on first use, so every app has exactly one)."""
    tracker = getattr(app.state, "db_outage", None)
    if tracker is None:
        tracker = app.state.db_outage = DatabaseOutage()
    return tracker


async def _gridmap_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DatabaseUnavailableError):
        return await _database_unavailable(request, exc)
    status = status_for(exc)
    body: dict[str, Any] = {"detail": _jsonable(str(exc))}
    if isinstance(exc, ValidationError) and exc.problems:
        body = {
            "detail": _jsonable(super(ValidationError, exc).__str__()),
            "problems": _jsonable(exc.problems[:100]),
        }
    if isinstance(exc, StaleVersionError):
        body["current"] = _jsonable(exc.current)
    headers = {"WWW-Authenticate": 'Bearer realm="gridmap"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


# A malformed 100,000-point body must not be echoed back: keep each problem small.
_MAX_PROBLEMS = 50
_MAX_INPUT_CHARS = 200


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:_MAX_PROBLEMS]:
        item = {
            "loc": _jsonable(list(error.get("loc", ()))),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        text = repr(error.get("input"))
        if "input" in error and len(text) <= _MAX_INPUT_CHARS:
            item["input"] = _jsonable(error["input"])
        problems.append(item)
    return JSONResponse({"detail": problems}, status_code=422)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    tracker = outage(request.app)
    tracker.went_down(exc)
    return JSONResponse(
        {"detail": "数据库暂不可用，请稍后重试 / the database is unavailable; retry shortly"},
        status_code=503,
        headers={"Retry-After": str(tracker.retry_after)},
    )


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # Validation should have caught it; the database refusing a value is still the
    # caller's input, never a server fault.
    return _refused(
        request,
        exc,
        422,
        "一个值超出允许范围或格式不对 / a value is out of range or malformed "
        "(text with NUL characters, a number too large, a time out of range)",
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A concurrent write won a unique key (a label, an external id): the caller's conflict.
    return _refused(
        request,
        exc,
        409,
        "与已有记录冲突 / conflicts with a stored record (a label or id already used); "
        "change it or read the existing one",
    )


def _refused(request: Request, exc: Exception, status: int, detail: str) -> JSONResponse:
    """Our own words for what the database refused; its text stays in the log."""
    log.info("database refused a value on %s: %s", request.url.path, _first_line(exc))
    return JSONResponse({"detail": detail}, status_code=status)


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).splitlines()[0] if str(exc) else type(exc).__name__


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DATABASE_DOWN):  # raised below FastAPI's own handlers (middleware)
        return await _database_unavailable(request, exc)
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal server error; see the server log"},
        status_code=500,
        headers={"Connection": "close"},
    )


def _jsonable(value: Any) -> Any:
    """Plain JSON values, whatever a problem list or a pydantic error holds."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        # A lone surrogate echoed back would make the error itself unencodable.
        return value if value.isascii() else value.encode("utf-8", "replace").decode()
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return str(value)
