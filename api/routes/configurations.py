"""Configurations: versioned multi-machine definitions of a service."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from api.deps import IfMatchDep, MinPosition, PrincipalDep, RuntimeDep, set_version
from api.schemas import (
    ConfigurationCreate,
    ConfigurationPatch,
    MachineBody,
    NetworkBody,
    machine_dict,
)
from api.views import configuration_view
from domain.errors import NotFoundError

router = APIRouter(tags=["configurations"])


def _result(response: Response, outcome: Any) -> dict[str, Any]:
    set_version(response, outcome.value.version, outcome.position)
    return {**configuration_view(outcome.value), "position": outcome.position}


@router.post("/api/v1/services/{service_id}/configurations", status_code=status.HTTP_201_CREATED)
def create_configuration(
    service_id: UUID,
    body: ConfigurationCreate,
    runtime: RuntimeDep,
    who: PrincipalDep,
    response: Response,
) -> dict[str, Any]:
    """Define a configuration (version 1) of a service."""
    outcome = runtime.app.create_configuration(
        service_id,
        body.name,
        body.description,
        [n.fields() for n in body.networks],
        [machine_dict(m) for m in body.machines],
        actor=who.user,
        reason=body.reason,
    )
    response.headers["Location"] = f"/api/v1/configurations/{outcome.value.id}"
    return _result(response, outcome)


@router.get("/api/v1/services/{service_id}/configurations")
def list_configurations(
    service_id: UUID, runtime: RuntimeDep, _: PrincipalDep, min_position: MinPosition = None
) -> dict[str, Any]:
    """List a service's configurations (from the configurations read model)."""
    runtime.app.service(service_id)  # 404 for an unknown service
    position = runtime.read_models.wait("configurations", min_position, runtime.settings.read_wait_seconds)
    return {"items": runtime.read_models.configurations(str(service_id)), "position": position}


@router.get("/api/v1/configurations/{configuration_id}")
def get_configuration(
    configuration_id: UUID,
    runtime: RuntimeDep,
    _: PrincipalDep,
    response: Response,
    version: int | None = Query(None, ge=1, description="Read this version instead of the latest"),
) -> dict[str, Any]:
    """One configuration, latest or at a given version."""
    if version is not None:
        latest = runtime.app.configuration(configuration_id)
        if version > latest.version:
            raise NotFoundError(
                f"configuration {configuration_id} has versions 1 to {latest.version}",
                field="version",
            )
    configuration = runtime.app.configuration(configuration_id, version=version)
    set_version(response, configuration.version)
    return configuration_view(configuration)


@router.patch("/api/v1/configurations/{configuration_id}")
def revise_configuration(
    configuration_id: UUID,
    body: ConfigurationPatch,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Rename, or replace description / networks / machines."""
    changes = body.fields()
    if body.machines is not None:
        changes["machines"] = [machine_dict(m) for m in body.machines]
    outcome = runtime.app.revise_configuration(
        configuration_id, changes, actor=who.user, reason=body.reason, expected_version=if_match
    )
    return _result(response, outcome)


@router.post("/api/v1/configurations/{configuration_id}/machines", status_code=status.HTTP_201_CREATED)
def add_machine(
    configuration_id: UUID,
    body: MachineBody,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Add a machine."""
    outcome = runtime.app.add_machine(
        configuration_id,
        machine_dict(body),
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
    )
    return _result(response, outcome)


@router.put("/api/v1/configurations/{configuration_id}/machines/{name}")
def change_machine(
    configuration_id: UUID,
    name: str,
    body: MachineBody,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Replace a machine's definition."""
    outcome = runtime.app.change_machine(
        configuration_id,
        name,
        machine_dict(body),
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
    )
    return _result(response, outcome)


@router.delete("/api/v1/configurations/{configuration_id}/machines/{name}")
def remove_machine(
    configuration_id: UUID,
    name: str,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    reason: str | None = Query(None, max_length=2048),
) -> dict[str, Any]:
    """Remove a machine."""
    outcome = runtime.app.remove_machine(
        configuration_id, name, actor=who.user, reason=reason, expected_version=if_match
    )
    return _result(response, outcome)


@router.post("/api/v1/configurations/{configuration_id}/networks", status_code=status.HTTP_201_CREATED)
def add_network(
    configuration_id: UUID,
    body: NetworkBody,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Add a network."""
    outcome = runtime.app.add_network(
        configuration_id,
        body.fields(),
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
    )
    return _result(response, outcome)


@router.delete("/api/v1/configurations/{configuration_id}/networks/{name}")
def remove_network(
    configuration_id: UUID,
    name: str,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    reason: str | None = Query(None, max_length=2048),
) -> dict[str, Any]:
    """Remove a network that no machine uses."""
    outcome = runtime.app.remove_network(
        configuration_id, name, actor=who.user, reason=reason, expected_version=if_match
    )
    return _result(response, outcome)
