"""The board (every service x its stages, with the deployments in each) and stage inventory."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query

from adapters.runtime import Runtime
from api.access import read_service, readable_service_ids
from api.auth import Principal
from api.deps import MinPosition, PrincipalDep, RuntimeDep, parse_time
from api.responses import errors
from api.responses.deployments import Board, Inventory
from domain.errors import NotFoundError
from projections.queries import board_service

router = APIRouter(prefix="/api/v1", tags=["board"], responses=errors(401, 422, 503))


@router.get("/board", response_model=Board, responses=errors(403, 404))
def board(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    service: UUID | None = Query(None, description="Service id (default: every service you may read)"),
    as_of: str | None = Query(None, description="ISO 8601 time: what every stage held then"),
) -> Board:
    """Every service with its stages and the deployments each stage holds (now, or at `as_of`)."""
    return Board.model_validate(board_document(runtime, who, min_position, service, as_of))


def board_document(
    runtime: Runtime,
    who: Principal,
    min_position: int | None,
    service: UUID | None,
    as_of: str | None,
) -> dict[str, Any]:
    """The board as plain data: the route validates it, the web console renders it."""
    when = parse_time(as_of, "as_of")
    if service is not None:
        read_service(runtime, who, service)
    readable = readable_service_ids(runtime, who)
    only = str(service) if service is not None else None
    position = runtime.read_models.wait(
        "deployments", min_position if when is None else runtime.app.head(), runtime.settings.read_wait_seconds
    )
    if when is None:
        services_now = [s for s in runtime.read_models.board(only) if readable is None or s["id"] in readable]
        return {"services": services_now, "position": position, "as_of": None}
    runtime.read_models.wait("audit", runtime.app.head(), runtime.settings.read_wait_seconds)
    entries = runtime.read_models.board_entries_at(when, only)
    services = []
    for service_id in runtime.audit.services_known_at(when):
        if (readable is not None and service_id not in readable) or (only is not None and service_id != only):
            continue
        version = runtime.audit.aggregate_version_at(service_id, when)
        if version is None:
            continue
        then = runtime.app.service(UUID(service_id), version=version)
        if then.retired:
            continue
        row = {"id": service_id, "name": then.name, "version": then.definition_version}
        services.append(board_service(row, then.stages, entries))
    services.sort(key=lambda s: str(s["name"]).casefold())
    return {"services": services, "position": position, "as_of": when}


@router.get("/inventory", response_model=Inventory, responses=errors(403, 404))
def inventory(
    runtime: RuntimeDep,
    who: PrincipalDep,
    service: UUID = Query(description="Service id"),
    stage: str | None = Query(None, description="Stage name (default: every stage)"),
    min_position: MinPosition = None,
) -> Inventory:
    """The machines living in a service's stages, with their VM, address and size."""
    read_service(runtime, who, service)
    position = runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
    items = runtime.read_models.inventory(str(service), stage)
    if (
        stage is not None
        and not items
        and stage.casefold() not in {s["name"].casefold() for s in runtime.app.service(service).stages}
    ):
        raise NotFoundError(f"service has no stage '{stage}'", field="stage")
    return Inventory.model_validate({"items": items, "position": position})
