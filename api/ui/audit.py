"""The audit page: filters, cursor pages, exports, and the state of the hash chain."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from api.access import readable_service_ids, require_admin
from api.export import csv_chunks, jsonl_lines
from api.routes.audit import audit_filter, visible
from api.ui.context import ConsoleRoute, RuntimeDep, SessionDep, render
from projections.audit_queries import AuditFilter
from projections.verify import verify

router = APIRouter(prefix="/ui/audit", route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50


def _empty(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def ui_filter(
    service: str | None = Query(None, max_length=64),
    stage: str | None = Query(None, max_length=200),
    actor: str | None = Query(None, max_length=256),
    type: str | None = Query(None, max_length=200),
    since: str | None = Query(None, alias="from", max_length=64),
    until: str | None = Query(None, alias="to", max_length=64),
    configuration: UUID | None = Query(None),
    deployment: UUID | None = Query(None),
) -> tuple[AuditFilter, dict[str, str]]:
    """The API's filter, from a form whose empty fields mean "any"."""
    values = {"service": service, "stage": stage, "actor": actor, "type": type, "from": since, "to": until,
              "configuration": str(configuration or ""), "deployment": str(deployment or "")}  # fmt: skip
    chosen = {k: v.strip() for k, v in values.items() if v and v.strip()}
    service_id = UUID(chosen["service"]) if "service" in chosen else None
    filters = audit_filter(
        service=service_id, stage=chosen.get("stage"), configuration=configuration, deployment=deployment,
        actor=chosen.get("actor"), type=chosen.get("type"), since=chosen.get("from"), until=chosen.get("to"),
    )  # fmt: skip
    return filters, chosen


UiFilter = Annotated[tuple[AuditFilter, dict[str, str]], Depends(ui_filter)]


def _query(chosen: dict[str, str], **more: Any) -> str:
    from urllib.parse import urlencode

    return urlencode({**chosen, **{k: v for k, v in more.items() if v is not None}})


@router.get("")
def audit_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, chosen_filter: UiFilter,
    cursor: int | None = Query(None, ge=1),
    limit: int = Query(PAGE, ge=1, le=1000, description="Entries per page"),
) -> Response:  # fmt: skip
    filters, chosen = chosen_filter
    if limit != PAGE:
        chosen = {**chosen, "limit": str(limit)}
    who = session.principal
    position = runtime.read_models.position("audit")
    items, next_cursor = runtime.audit.page(visible(runtime, who, filters), cursor, limit)
    readable = readable_service_ids(runtime, who)
    services = [s for s in runtime.read_models.services(True) if readable is None or s["id"] in readable]
    head = runtime.audit.page(AuditFilter(), None, 1)[0]
    context = {
        "title": "Audit", "nav": "audit", "items": items, "next_cursor": next_cursor, "cursor": cursor,
        "chosen": chosen, "query": _query(chosen), "older": _query(chosen, cursor=next_cursor),
        "services": services, "names": {s["id"]: s["name"] for s in services}, "position": position,
        "head": head[0] if head else None,
    }  # fmt: skip
    return render(request, "audit.html", context)


@router.get("/export")
def export(
    runtime: RuntimeDep, session: SessionDep, chosen_filter: UiFilter,
    format: str = Query("jsonl", pattern="^(jsonl|csv)$"),
) -> Response:  # fmt: skip
    """The API's export of the filtered log, as a download."""
    filters, _ = chosen_filter
    rows = runtime.audit.stream(visible(runtime, session.principal, filters))
    if format == "csv":
        body, media, name = csv_chunks(rows), "text/csv; charset=utf-8", "stagekeeper-audit.csv"
    else:
        body, media, name = jsonl_lines(rows), "application/x-ndjson", "stagekeeper-audit.jsonl"
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/verify")
def verify_chain(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Recompute the whole chain from the event store (administrators: it reads every event)."""
    require_admin(session.principal, "verify the whole audit chain")
    verdict = verify(runtime.app, runtime.store)
    return render(request, "fragments/verdict.html", {"verdict": verdict})
