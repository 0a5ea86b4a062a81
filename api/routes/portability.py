"""A service exported to one signed file (owners and administrators), imported by administrators."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import JSONResponse
from pydantic import Field

from api.access import manage_service, require_admin
from api.deps import PrincipalDep, RuntimeDep
from api.responses import Out, errors
from api.responses.services import Service
from api.routing import OneHopRoute
from api.views import service_view

router = APIRouter(route_class=OneHopRoute, tags=["services"], responses=errors(401, 403, 422, 503))


class ExportChain(Out):
    algorithm: str
    count: int
    head: str = Field(description="The last record's hash: it proves the file whole, not who wrote it")
    hmac: str | None = Field(
        None, description="HMAC-SHA256 of the head under STAGEKEEPER_EXPORT_KEY, when the exporting instance has one"
    )


class ExportRecord(Out):
    aggregate: str = Field(description='"service" or "configuration"')
    originator_id: str
    originator_version: int
    topic: str
    state: dict[str, Any] = Field(description="The event's stored state")
    hash: str = Field(description="SHA-256 of the previous record's hash and this record's canonical JSON")


class ExportFile(Out):
    format: str
    exported_at: str
    exported_by: str
    service: dict[str, Any]
    records: list[ExportRecord]
    chain: ExportChain


@router.get(
    "/api/v1/services/{service_id}/export",
    response_class=JSONResponse,
    responses={
        **errors(404),
        200: {"model": ExportFile, "description": "The export file (stagekeeper-service-export/1)"},
    },
)
def export_service(service_id: UUID, runtime: RuntimeDep, who: PrincipalDep) -> JSONResponse:
    """The service, its configurations with their whole history, grants and stage policies, signed by
    its hash chain (no deployments, no secrets)."""
    service = manage_service(runtime, who, service_id)
    configuration_ids = [UUID(str(row["id"])) for row in runtime.read_models.configurations(str(service_id))]
    document = runtime.app.export_service(service.id, configuration_ids, who.user)
    return JSONResponse(
        document, headers={"Content-Disposition": content_disposition(f"{service.name}.stagekeeper.json")}
    )


def content_disposition(filename: str) -> str:
    """An attachment header for any name (RFC 6266 with RFC 5987): an ASCII fallback, quotes,
    backslashes, separators and controls replaced, then the exact UTF-8 name percent-encoded."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\/' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.post(
    "/api/v1/imports", status_code=status.HTTP_201_CREATED, response_model=Service, responses=errors(409, 413, 415)
)
def import_service(
    runtime: RuntimeDep,
    who: PrincipalDep,
    document: dict[str, Any] = Body(description="An export file, as GET /services/{id}/export wrote it"),
    reason: str | None = Query(None, max_length=2048, description="Why (kept in the audit log)"),
) -> Service:
    """Load an exported service into this instance (administrators): refused whole when its chain does
    not verify or when its name, pools, IP ranges or ids are taken here."""
    require_admin(who, "import services")
    outcome = runtime.app.import_service(document, who.user, reason)
    return Service.model_validate({**service_view(outcome.value), "position": outcome.position})
