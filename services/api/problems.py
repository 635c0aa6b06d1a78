"""Errors as RFC 9457 problem details (application/problem+json): what went wrong, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.api.models import ErrorItem, Problem

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("sweep.api")


class ApiError(Exception):
    """An answer other than success; `status` is its HTTP status."""

    status = 500
    title = "Internal Server Error"

    def __init__(
        self, detail: str, errors: list[ErrorItem] | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class BadRequest(ApiError):
    status, title = 400, "Bad Request"


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"


class NotFound(ApiError):
    status, title = 404, "Not Found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class TooSlow(ApiError):
    status, title = 408, "Request Timeout"


class TooLarge(ApiError):
    status, title = 413, "Content Too Large"


class UnsupportedMediaType(ApiError):
    status, title = 415, "Unsupported Media Type"


class Invalid(ApiError):
    status, title = 422, "Unprocessable Content"


class TooMany(ApiError):
    """The queue of sweeps is full: `Retry-After` says when to try again."""

    status, title = 429, "Too Many Requests"


class Unavailable(ApiError):
    """Ray's Jobs API or MLflow cannot be reached (or refused): the detail names which."""

    status, title = 503, "Service Unavailable"


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[ErrorItem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE, headers=headers or None
    )


def located(errors: list[str]) -> list[ErrorItem]:
    """`where: what` lines (SpecError's) as {loc, msg}; a line with no location gets loc ''."""
    items = []
    for line in errors:
        loc, sep, msg = line.partition(": ")
        if not sep or " " in loc:
            loc, msg = "", line
        items.append(ErrorItem(loc=loc, msg=msg))
    return items


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path."""
    methods = []
    for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.routes):
            methods.append(method)
    return methods


def install(app: FastAPI) -> None:
    """Every error the app can raise answers as a problem."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> JSONResponse:
        return problem(err.status, err.title, err.detail, err.errors, err.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        items = [ErrorItem(loc=_loc(tuple(e["loc"])), msg=str(e["msg"])) for e in err.errors()]
        return problem(422, Invalid.title, "the request's parameters are not valid", items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(err.status_code, "Error")
        headers = dict(err.headers or {})
        if err.status_code == 405:  # Starlette lists only the first route's methods of a path
            headers["Allow"] = ", ".join(_methods(request))
        return problem(err.status_code, title, str(err.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(
            500, ApiError.title, f"unexpected {type(err).__name__}; the service log has the details"
        )
