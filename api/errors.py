"""Domain errors -> HTTP status, in one place. Every error body is {"error": {code, message, field}}.

The handlers are coroutines: Starlette runs a plain `def` exception handler in anyio's thread pool,
a thread hop (a worker thread woken, a capacity limiter, a cancel scope) for every 401, 404, 409 or
422 answer, when building the body is a few microseconds of work. What blocks is still done off the
event loop, in the API's thread pool: the audit record of a refusal (an event store write) and the
`Allow` header of a 405 (it reads the OpenAPI document, generated on first use).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.allow import allowed_methods
from api.routing import run_in_pool
from domain.errors import (
    AuthenticationError,
    ConflictError,
    InfrastructureError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    StagekeeperError,
    TooManyRequestsError,
    UnavailableError,
    ValidationError,
)
from domain.requests import DuplicateRequestError

log = logging.getLogger("stagekeeper.api")

STATUS: tuple[tuple[type[StagekeeperError], int], ...] = (
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PreconditionFailedError, 412),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (UnavailableError, 503),
    (TooManyRequestsError, 429),
    (DuplicateRequestError, 409),
    (InfrastructureError, 502),
)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def status_of(error: StagekeeperError) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 400


def _location(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


# Refusals of a well-formed command by the rules or by permissions are security-relevant and go
# to the audit log; malformed input (422) and unknown ids (404) do not.
REFUSALS = (ConflictError, PermissionDeniedError, PreconditionFailedError)
_TARGETS = ("deployment_id", "configuration_id", "service_id")


def record_refusal(request: Request, error: StagekeeperError) -> int | None:
    """Record the refusal; returns the position written (None for unauthenticated callers)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return None
    route = request.scope.get("route")
    command = getattr(route, "name", None) or f"{request.method} {request.url.path}"
    params = request.path_params
    target = next((params[name] for name in _TARGETS if name in params), None)
    try:
        target_id = UUID(str(target)) if target is not None else None
    except ValueError:
        target_id = None
    position: int = request.app.state.runtime.app.record_refusal(
        command, error.code, error.message, principal.user, target_id
    )
    return position


def headers_for(request: Request, status: int) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": 'Basic realm="stagekeeper", Bearer'}
    if status in (429, 503):
        # Worth trying again once a dependency had the time to come back (or a slot to free up).
        return {"Retry-After": str(retry_after(request))}
    return None


def retry_after(request: Request) -> int:
    seconds: float = request.app.state.runtime.settings.unavailable_seconds
    return max(1, round(seconds))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StagekeeperError)
    async def domain_error(request: Request, error: StagekeeperError) -> JSONResponse:
        status = status_of(error)
        body = error_body(error.code, error.message, error.field)
        if isinstance(error, REFUSALS) and request.method != "GET":
            # The refusal is itself audited (a write: off the event loop); its position lets the
            # caller read it back.
            body["error"]["position"] = await run_in_pool(record_refusal, request, error)
        return JSONResponse(body, status_code=status, headers=headers_for(request, status))

    @app.exception_handler(RequestValidationError)
    async def request_error(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        field = _location(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg', 'invalid value')}"
        if first.get("type") == "json_invalid":
            field, message = "body", "the request body is not valid JSON"
        return JSONResponse(error_body("invalid", message, field), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # FastAPI's only 400: a body it cannot even decode (not UTF-8). Malformed input is a 422 here.
            return JSONResponse(error_body("invalid", "the request body is not valid JSON", "body"), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}.get(
            error.status_code, "http_error"
        )
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            headers["Allow"] = await run_in_pool(allowed_methods, request) or headers.get("Allow", "")
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code, headers=headers)
