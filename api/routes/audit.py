"""The audit log: who changed what, when and why; filtered, paginated, exported."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from adapters.runtime import Runtime
from api.access import read_service, readable_service_ids
from api.auth import Principal
from api.deps import MinPosition, PrincipalDep, RuntimeDep, parse_time
from api.export import csv_chunks, jsonl_lines
from api.responses import errors
from api.responses.audit import AuditPage, export_formats
from domain.errors import ValidationError
from projections.audit_queries import AuditFilter

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=errors(401, 403, 404, 422, 503))


def audit_filter(
    service: UUID | None = Query(None, description="Service id"),
    stage: str | None = Query(None, description="Stage name (events in or moving out of it)"),
    configuration: UUID | None = Query(None, description="Configuration id"),
    deployment: UUID | None = Query(None, description="Deployment id"),
    actor: str | None = Query(None, description="Who did it"),
    type: str | None = Query(None, description='Event type, e.g. "Deployment.Moved", or a prefix "Deployment."'),
    since: str | None = Query(None, alias="from", description="ISO 8601 time, inclusive"),
    until: str | None = Query(None, alias="to", description="ISO 8601 time, exclusive"),
) -> AuditFilter:
    start, end = parse_time(since, "from"), parse_time(until, "to")
    if start and end and start >= end:
        raise ValidationError("from must be earlier than to", field="from")
    return AuditFilter(
        service_id=str(service) if service else None,
        stage=stage,
        configuration_id=str(configuration) if configuration else None,
        deployment_id=str(deployment) if deployment else None,
        actor=actor,
        event_type=type,
        since=start,
        until=end,
    )


FilterDep = Annotated[AuditFilter, Depends(audit_filter)]


def visible(runtime: Runtime, who: Principal, filters: AuditFilter) -> AuditFilter:
    """Non-administrators see the entries of the services they hold a role on, and nothing else."""
    if filters.service_id is not None:
        read_service(runtime, who, UUID(filters.service_id))
        return filters
    readable = readable_service_ids(runtime, who)
    return filters if readable is None else replace(filters, service_ids=tuple(sorted(readable)))


@router.get("", response_model=AuditPage)
def audit(
    runtime: RuntimeDep,
    who: PrincipalDep,
    filters: FilterDep,
    min_position: MinPosition = None,
    cursor: int | None = Query(None, ge=1, description="`next_cursor` of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditPage:
    """Audit entries, newest first, with a cursor for the next (older) page."""
    position = runtime.read_models.wait("audit", min_position, runtime.settings.read_wait_seconds)
    items, next_cursor = runtime.audit.page(visible(runtime, who, filters), cursor, limit)
    return AuditPage.model_validate({"items": items, "next_cursor": next_cursor, "position": position})


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: export_formats()},
)
def export(
    runtime: RuntimeDep,
    who: PrincipalDep,
    filters: FilterDep,
    format: str = Query("jsonl", pattern="^(jsonl|csv)$", description="jsonl or csv"),
) -> StreamingResponse:
    """The whole (filtered) audit log, oldest first, streamed as JSON Lines or CSV."""
    rows = runtime.audit.stream(visible(runtime, who, filters))
    if format == "csv":
        return StreamingResponse(csv_chunks(rows), media_type="text/csv; charset=utf-8")
    return StreamingResponse(jsonl_lines(rows), media_type="application/x-ndjson")
