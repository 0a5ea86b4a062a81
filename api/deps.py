"""FastAPI dependencies: the runtime, the caller, If-Match and read-your-writes positions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from adapters.runtime import Runtime
from api.auth import Authenticator, Principal
from domain.errors import ValidationError

_basic = HTTPBasic(auto_error=False, description="A local account (e.g. admin)")
_bearer = HTTPBearer(auto_error=False, description="An API token from POST /api/v1/tokens")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_principal(
    request: Request,
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
    _basic_credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = authenticator.authenticate(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def get_if_match(if_match: Annotated[str | None, Header(alias="If-Match")] = None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match)
    if not match:
        raise ValidationError('If-Match must be a version number, e.g. If-Match: "3"', field="If-Match")
    return int(match.group(1))


IfMatchDep = Annotated[int | None, Depends(get_if_match)]
MinPosition = Annotated[
    int | None,
    Query(ge=0, description="Wait (bounded) until the read model reflects this notification position"),
]


def parse_time(value: str | None, field: str) -> str | None:
    """ISO 8601 -> the fixed-width UTC text the read models store (naive times are UTC)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace(" ", "+") if "T" in value else value.strip())
    except ValueError:
        raise ValidationError(f"{field} must be an ISO 8601 time such as 2026-11-26T09:30:00Z", field=field) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def set_version(response: Response, version: int, position: int | None = None) -> None:
    response.headers["ETag"] = f'"{version}"'
    if position:
        response.headers["X-Stagekeeper-Position"] = str(position)
