"""The one place where errors become HTTP responses, always as ``{"detail": ...}``.

``gis.errors.GridmapError`` is the base of every error raised on purpose (the
service's own classes are in ``app/errors.py``). :data:`HTTP_STATUS` maps the
hierarchy to status codes: the most specific class listed wins.
Anything else is a bug and becomes a 500 without internals in the body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from app.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from gis.errors import CRSError, GridmapError, InfeasibleError, InvalidCodeError, ValidationError

log = logging.getLogger("gridmap.api")

__all__ = [
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
}


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
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _gridmap_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, ValidationError) and exc.problems:
        body = {
            "detail": super(ValidationError, exc).__str__(),
            "problems": _jsonable(exc.problems[:100]),
        }
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
            "loc": list(error.get("loc", ())),
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


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # Validation should have caught it; the database refusing a value is still the
    # caller's input (e.g. a NUL byte in a text field), never a server fault.
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    return JSONResponse(
        {"detail": f"a value was refused by the database: {reason}"}, status_code=422
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal server error; see the server log"}, status_code=500)


def _jsonable(value: Any) -> Any:
    """Plain JSON values, whatever a problem list or a pydantic error holds."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return str(value)
