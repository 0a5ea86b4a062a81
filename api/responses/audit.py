"""The audit log."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp


class AuditEntry(Out):
    position: int
    at: Timestamp
    actor: str | None
    reason: str | None
    service_id: UUID | None
    stage: str | None
    from_stage: str | None
    configuration_id: UUID | None
    deployment_id: UUID | None
    aggregate_id: UUID
    aggregate_version: int
    event_type: str
    summary: str
    hash: str


class AuditPage(Out):
    items: list[AuditEntry]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next (older) page; null on the last")
    position: Position
