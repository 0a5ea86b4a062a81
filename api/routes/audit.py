"""The audit log: who changed what, when and why; filtered, paginated, exported."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from adapters.runtime import Runtime
from api.access import read_service, readable_service_ids
from api.auth import Principal
from api.deps import MinPosition, PrincipalDep, RuntimeDep, parse_time
from api.export import csv_chunks, csv_failure, guarded, jsonl_failure, jsonl_lines, started
from api.responses import errors
from api.responses.audit import AuditPage, export_formats
from api.routing import OneHopRoute
from domain.errors import NotFoundError, ValidationError
from domain.values import normalise_key
from projections.audit_queries import AuditFilter

router = APIRouter(
    route_class=OneHopRoute, prefix="/api/v1/audit", tags=["audit"], responses=errors(401, 403, 404, 422, 503)
)


def audit_filter(
    service: UUID | None = Query(None, description="Service id"),
    stage: str | None = Query(
        None,
        description="Stage id, or a stage's current name (its whole history, under every name it had); "
        "a name no stage has now matches the name as it was at the time",
    ),
    configuration: UUID | None = Query(None, description="Configuration id"),
    deployment: UUID | None = Query(None, description="Deployment id"),
    actor: str | None = Query(None, description="Who did it"),
    type: str | None = Query(None, description='Event type, e.g. "Deployment.Moved", or a prefix "Deployment."'),
    since: str | None = Query(None, alias="from", description="ISO 8601 time, inclusive"),
    until: str | None = Query(None, alias="to", description="ISO 8601 time, exclusive"),
    include: Literal["system"] | None = Query(
        None, description='"system": also bookkeeping entries (name and address claims), hidden by default'
    ),
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
        include_system=include == "system",
    )


FilterDep = Annotated[AuditFilter, Depends(audit_filter)]


def visible(runtime: Runtime, who: Principal, filters: AuditFilter) -> AuditFilter:
    """Non-administrators see the entries of the services they hold a role on, and nothing else."""
    if filters.service_id is not None:
        read_service(runtime, who, UUID(filters.service_id))
        return stage_ids(runtime, filters)
    readable = readable_service_ids(runtime, who)
    filters = stage_ids(runtime, filters)
    return filters if readable is None else replace(filters, service_ids=tuple(sorted(readable)))


def stage_ids(runtime: Runtime, filters: AuditFilter) -> AuditFilter:
    """`stage` as stable ids: an id as given; a name through the current service (or through
    every service having a stage of that name now). A name no stage has now stays a name."""
    if filters.stage is None:
        return filters
    try:
        return replace(filters, stage=None, stage_ids=(str(UUID(filters.stage)),))
    except ValueError:
        pass
    found: tuple[str, ...]
    if filters.service_id is not None:
        try:
            found = (runtime.app.service(UUID(filters.service_id)).stage(filters.stage)["id"],)
        except NotFoundError:
            found = ()
    else:
        key = normalise_key(filters.stage)
        found = tuple(
            stage["id"]
            for service in runtime.read_models.services(include_retired=True)
            for stage in service["stages"]
            if normalise_key(stage["name"]) == key
        )
    return replace(filters, stage_ids=found) if found else filters


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


@router.get("/export", response_class=StreamingResponse, responses={200: export_formats()})
def export(
    runtime: RuntimeDep,
    who: PrincipalDep,
    filters: FilterDep,
    format: str = Query("jsonl", pattern="^(jsonl|csv)$", description="jsonl or csv"),
) -> StreamingResponse:
    """The whole (filtered) audit log, oldest first, streamed as JSON Lines or CSV. An export that
    fails midway ends with an error record and an aborted (incomplete) chunked response."""
    rows = runtime.audit.stream(visible(runtime, who, filters))
    if format == "csv":
        chunks = guarded(started(csv_chunks(rows)), csv_failure)
        return StreamingResponse(chunks, media_type="text/csv; charset=utf-8")
    return StreamingResponse(guarded(started(jsonl_lines(rows)), jsonl_failure), media_type="application/x-ndjson")
