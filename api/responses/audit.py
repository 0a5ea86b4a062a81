"""The audit log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from api.responses import ErrorResponse, Out, Position, Timestamp


class AuditEntry(Out):
    position: int
    at: Timestamp
    actor: str | None
    reason: str | None
    service_id: UUID | None
    stage: str | None
    from_stage: str | None
    stage_id: UUID | None = Field(description="Stable id of the stage (it stays when the stage is renamed)")
    from_stage_id: UUID | None
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


def export_formats() -> dict[str, Any]:
    """The 200 answer of the export: JSON Lines (one entry per line) or CSV with a header row."""
    return {
        "description": "The entries, oldest first: JSON Lines (format=jsonl) or CSV with a header row (format=csv)",
        "content": {
            # An export that fails midway ends with one error record (and an aborted body).
            "application/x-ndjson": {
                "itemSchema": {"oneOf": [AuditEntry.model_json_schema(), ErrorResponse.model_json_schema()]}
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
