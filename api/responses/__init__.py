"""Response bodies: what every route sends back, as FastAPI validates and documents it; one
module per resource, the shared pieces and the error body here.

Models forbid unknown fields, so a field that a view or a read model starts sending without being
declared here fails loudly in the tests instead of reaching clients undocumented.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Times are sent as the ISO 8601 text the views and read models produce (kept byte for byte).
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-26T09:30:00+00:00"])]
Position = Annotated[int, Field(description="Notification position this answer reflects (pass as min_position)")]
State = Literal[
    "requested",
    "provisioning",
    "deployed",
    "promoting",
    "demoting",
    "undeploying",
    "undeployed",
    "failed",
    "upgrading",
    "swapping",
]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Out):
    code: str = Field(description="Machine-readable reason, e.g. invalid, not_found, conflict, forbidden")
    message: str
    field: str | None = Field(description="The offending field or rule (dotted path), when there is one")
    position: int | None = Field(
        None, description="Refused commands only: the position of the audit entry recording the refusal"
    )


class ErrorResponse(Out):
    error: ErrorDetail


ERRORS: dict[int, str] = {
    401: "No credentials, or wrong ones (the `WWW-Authenticate` header names the schemes)",
    403: "Authenticated, but holding no role that allows this (refused commands are audited)",
    404: "No such service, configuration, deployment, stage, machine, network, grant or token",
    409: "Conflicts with the current state: duplicate name, invalid transition, concurrent change",
    412: "If-Match names a version that is no longer current",
    413: "The request body is larger than the server accepts",
    415: "The request body is not sent as JSON (content-type: application/json)",
    422: "Malformed input; `field` names the offending field or rule",
    429: "Too many requests of this kind open at once; retry after `Retry-After` seconds",
    502: "vCenter refused or failed the request; the message carries its reason",
    503: "The database, the directory or vCenter is unreachable, or a read model did not reach `min_position` in time",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries: each status with the error body and what it means here."""
    return {
        status: {"model": ErrorResponse, "description": ERRORS[status], **_HEADERS.get(status, {})}
        for status in statuses
    }


_RETRY = {"headers": {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}}}
_HEADERS: dict[int, dict[str, Any]] = {
    429: _RETRY,
    503: _RETRY,
    401: {
        "headers": {
            "WWW-Authenticate": {"description": "The schemes accepted: Basic and Bearer", "schema": {"type": "string"}}
        }
    },
}
