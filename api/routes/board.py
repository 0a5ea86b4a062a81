"""The board (every service x its stages, with the deployments in each) and stage inventory."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query

from api.access import read_service, readable_service_ids
from api.deps import MinPosition, PrincipalDep, RuntimeDep, parse_time
from api.responses import errors
from api.responses.deployments import Board, Inventory
from domain.errors import NotFoundError

router = APIRouter(prefix="/api/v1", tags=["board"], responses=errors(401, 422, 503))


@router.get("/board", response_model=Board)
def board(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    as_of: str | None = Query(None, description="ISO 8601 time: what every stage held then"),
) -> Board:
    """Every service with its stages and the deployments each stage holds (now, or at `as_of`)."""
    when = parse_time(as_of, "as_of")
    readable = readable_service_ids(runtime, who)
    if when is None:
        position = runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
        services_now = [s for s in runtime.read_models.board() if readable is None or s["id"] in readable]
        return Board.model_validate({"services": services_now, "position": position, "as_of": None})
    position = runtime.read_models.wait("stage_history", runtime.app.head(), runtime.settings.read_wait_seconds)
    runtime.read_models.wait("audit", runtime.app.head(), runtime.settings.read_wait_seconds)
    services = []
    contents = runtime.audit.stage_contents_at(when)
    for service_id in runtime.audit.services_known_at(when):
        if readable is not None and service_id not in readable:
            continue
        version = runtime.audit.aggregate_version_at(service_id, when)
        if version is None:
            continue
        service = runtime.app.service(UUID(service_id), version=version)
        if service.retired:
            continue
        held = [c for c in contents if c["service_id"] == service_id]
        services.append(
            {
                "id": service_id,
                "name": service.name,
                "version": service.definition_version,
                "stages": [
                    {**stage, "deployments": [c for c in held if c["stage"] == stage["name"]]}
                    for stage in service.stages
                ],
            }
        )
    services.sort(key=lambda s: str(s["name"]).casefold())
    return Board.model_validate({"services": services, "position": position, "as_of": when})


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
