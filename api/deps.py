"""FastAPI dependencies: the runtime, the caller, If-Match and read-your-writes positions."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Query, Request, Response
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from starlette.concurrency import run_in_threadpool

from adapters.runtime import Runtime
from api.auth import Authenticator, Principal
from domain.errors import ValidationError
from domain.text import check_text

_basic = HTTPBasic(auto_error=False, description="A local account (e.g. admin)")
_bearer = HTTPBearer(auto_error=False, description="An API token from POST /api/v1/tokens")


# The dependencies every command runs are async and do no I/O on the event loop: a sync
# dependency costs a hop to the thread pool each (and a wait for the GIL behind the workers'
# threads), so a command would pay five; now only the route itself (and a credential not in
# the cache) runs in a worker thread.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_principal(
    request: Request,
    # Declared for the OpenAPI document (the two ways to authenticate); the header is read below.
    _basic_credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await _principal(request)


async def principal_at_runtime(request: Request) -> Principal:
    """`get_principal` as requests run it (api/routing.py): the two security schemes checked in
    line, in the same order, instead of as two more dependencies to solve on every request."""
    await _basic(request)
    await _bearer(request)
    return await _principal(request)


async def _principal(request: Request) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    authorization = request.headers.get("authorization")
    # A credential verified moments ago is found without I/O; anything else (a password check
    # costs tens of milliseconds by design, a token is looked up) runs in a worker thread.
    principal = authenticator.cached(authorization)
    if principal is None:
        principal = await run_in_threadpool(authenticator.authenticate, authorization)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]

# One entity-tag of an If-Match list: "3", W/"3" (or a bare 3, which clients send too).
_ETAG = re.compile(r'\s*(?:W/)?(?:"(\d{1,18})"|(\d{1,18}))\s*')
_MAX_ETAGS = 64
# Path parameters naming the object a conditional command changes, most specific first.
_TARGETS = ("deployment_id", "configuration_id", "service_id")


def parse_if_match(value: str | None) -> tuple[int, ...] | None:
    """The versions an If-Match header lists (RFC 9110: `*` or a comma-separated list of
    entity-tags, weak ones accepted); None when absent or `*` (anything matches)."""
    if value is None or value.strip() == "*":
        return None
    items = value.split(",")
    matches = [_ETAG.fullmatch(item) for item in items]
    if len(items) > _MAX_ETAGS or not all(matches):
        raise ValidationError(
            f'If-Match must list up to {_MAX_ETAGS} versions such as "3" or "3", "4" (or be *)', field="If-Match"
        )
    return tuple(int(m.group(1) or m.group(2)) for m in matches if m is not None)


async def get_if_match(
    request: Request,
    runtime: RuntimeDep,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> int | None:
    """The one version a command compares with (the domain checks it in the same write).

    With several listed, the one that is current now is passed on, so the command succeeds only
    if the object is still at a listed version when it writes (a concurrent change gives 412).
    """
    return await _if_match(request, runtime, if_match)


async def if_match_at_runtime(request: Request) -> int | None:
    """`get_if_match` as requests run it (api/routing.py): the runtime and the header read from
    the request (the same first If-Match value FastAPI would pass) instead of solved as two more
    dependencies on every command."""
    runtime: Runtime = request.app.state.runtime
    return await _if_match(request, runtime, request.headers.get("if-match"))


async def _if_match(request: Request, runtime: Runtime, if_match: str | None) -> int | None:
    versions = parse_if_match(if_match)
    if versions is None:
        return None
    if len(versions) > 1:
        target = next((str(request.path_params[n]) for n in _TARGETS if n in request.path_params), "")
        try:
            current = await run_in_threadpool(runtime.app.current_version, UUID(target))
        except ValueError:
            current = None  # not an id: the route refuses the path itself
        if current in versions:
            return current
    return versions[0]


IfMatchDep = Annotated[int | None, Depends(get_if_match)]

# The OpenAPI document is built from the declared dependencies (security schemes, the If-Match
# header); requests run these equivalents, which have no sub-dependencies (api/routing.py).
RUNTIME_EQUIVALENTS: dict[Callable[..., Any], Callable[..., Any]] = {
    get_principal: principal_at_runtime,
    get_if_match: if_match_at_runtime,
}
MinPosition = Annotated[
    int | None,
    Query(ge=0, description="Wait (bounded) until the read model reflects this notification position"),
]


def parse_time(value: str | None, field: str) -> str | None:
    """ISO 8601 -> the fixed-width UTC text the read models store (naive times are UTC).

    Every time a route accepts goes through here: times that do not fit in years 1-9999 once
    converted to UTC are refused like malformed ones."""
    if value is None:
        return None
    check_text(value, field, max_length=64)
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()  # '+' arrives as ' ' in a query
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        utc = when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"{field} must be an ISO 8601 time from year 1 to 9999 (UTC), such as 2026-11-26T09:30:00Z",
            field=field,
        ) from None
    return utc.isoformat(timespec="microseconds")


# Query parameters that are free text (several lines allowed); every other one is a single line.
_MULTILINE_PARAMETERS = frozenset({"reason"})
_MAX_PARAMETER = 8192


async def check_parameters(request: Request) -> None:
    """Every query and path parameter of every route holds text the domain's text rule accepts
    (so a NUL in a filter is a 422 naming it, before a query runs or an export starts)."""
    # Without a query string there is nothing to parse (most commands): no QueryParams built.
    query = request.query_params.multi_items() if request.scope.get("query_string") else ()
    for name, value in query:
        check_text(name, "query parameter name", max_length=_MAX_PARAMETER)
        check_text(value, name, max_length=_MAX_PARAMETER, multiline=name in _MULTILINE_PARAMETERS)
    for name, value in request.path_params.items():
        check_text(str(value), name, max_length=_MAX_PARAMETER)


def set_version(response: Response, version: int, position: int | None = None) -> None:
    response.headers["ETag"] = f'"{version}"'
    if position:
        response.headers["X-Stagekeeper-Position"] = str(position)
