"""Configurations: versioned multi-machine definitions of a service."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from adapters.runtime import Runtime
from api.access import manage_configuration, manage_service, read_configuration, read_service
from api.deps import IfMatchDep, MinPosition, PrincipalDep, RuntimeDep, parse_time, set_version
from api.responses import errors
from api.responses.configurations import (
    Configuration,
    ConfigurationDiff,
    ConfigurationHistory,
    ConfigurationList,
)
from api.routing import OneHopRoute
from api.schemas import (
    ConfigurationCreate,
    ConfigurationPatch,
    MachineBody,
    NetworkBody,
    RestoreRequest,
    RetireRequest,
    machine_dict,
)
from api.views import configuration_view
from domain.diff import describe, diff_definitions
from domain.errors import NotFoundError, ValidationError
from domain.values import check_version_number

router = APIRouter(route_class=OneHopRoute, tags=["configurations"], responses=errors(401, 403, 404, 422, 503))
# Commands on a configuration: they may conflict (or race), the body may be too big, If-Match may be stale.
VERSIONED = errors(409, 412, 413, 415)


def _result(response: Response, outcome: Any) -> Configuration:
    set_version(response, outcome.value.version, outcome.position)
    return Configuration.model_validate({**configuration_view(outcome.value), "position": outcome.position})


@router.post(
    "/api/v1/services/{service_id}/configurations",
    status_code=status.HTTP_201_CREATED,
    response_model=Configuration,
    responses=errors(409, 413, 415),
)
def create_configuration(
    service_id: UUID,
    body: ConfigurationCreate,
    runtime: RuntimeDep,
    who: PrincipalDep,
    response: Response,
) -> Configuration:
    """Define a configuration (version 1) of a service."""
    manage_service(runtime, who, service_id)
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


@router.get("/api/v1/services/{service_id}/configurations", response_model=ConfigurationList)
def list_configurations(
    service_id: UUID, runtime: RuntimeDep, who: PrincipalDep, min_position: MinPosition = None
) -> ConfigurationList:
    """List a service's configurations (from the configurations read model)."""
    read_service(runtime, who, service_id)
    position = runtime.read_models.wait("configurations", min_position, runtime.settings.read_wait_seconds)
    return ConfigurationList.model_validate(
        {"items": runtime.read_models.configurations(str(service_id)), "position": position}
    )


def version_at(runtime: Runtime, configuration_id: UUID, as_of: str) -> int:
    """The configuration version current at `as_of` (from the audit log, caught up first)."""
    when = parse_time(as_of, "as_of")
    assert when is not None
    runtime.app.configuration(configuration_id)  # 404 for an unknown configuration
    runtime.read_models.wait("audit", runtime.app.head(), runtime.settings.read_wait_seconds)
    version = runtime.audit.configuration_version_at(str(configuration_id), when)
    if version is None:
        raise NotFoundError(f"configuration {configuration_id} did not exist at {when}", field="as_of")
    return version


@router.get("/api/v1/configurations/{configuration_id}", response_model=Configuration)
def get_configuration(
    configuration_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    response: Response,
    version: int | None = Query(None, ge=1, description="Read this version instead of the latest"),
    as_of: str | None = Query(None, description="Read the version current at this ISO 8601 time"),
) -> Configuration:
    """One configuration: latest, at a given version, or as it was at a given time."""
    read_configuration(runtime, who, configuration_id)
    if version is not None and as_of is not None:
        raise ValidationError("give version or as_of, not both", field="as_of")
    if as_of is not None:
        version = version_at(runtime, configuration_id, as_of)
    if version is not None:
        check_version_number(version, runtime.app.configuration(configuration_id).version, "version")
    configuration = runtime.app.configuration(configuration_id, version=version)
    position = runtime.app.head()
    set_version(response, configuration.version, position)
    return Configuration.model_validate({**configuration_view(configuration), "position": position})


@router.get("/api/v1/configurations/{configuration_id}/history", response_model=ConfigurationHistory)
def configuration_history(
    configuration_id: UUID, runtime: RuntimeDep, who: PrincipalDep, min_position: MinPosition = None
) -> ConfigurationHistory:
    """Every version: when, who, why and what changed."""
    read_configuration(runtime, who, configuration_id)
    position = runtime.read_models.wait("audit", min_position, runtime.settings.read_wait_seconds)
    return ConfigurationHistory.model_validate(
        {"items": runtime.audit.history(str(configuration_id)), "position": position}
    )


@router.get("/api/v1/configurations/{configuration_id}/diff", response_model=ConfigurationDiff)
def configuration_diff(
    configuration_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    from_version: int = Query(alias="from", ge=1, description="Older version"),
    to_version: int | None = Query(None, alias="to", ge=1, description="Newer version (default: latest)"),
) -> ConfigurationDiff:
    """What changed between two versions: machines and networks added, removed, changed field by field."""
    latest = read_configuration(runtime, who, configuration_id).version
    to_version = to_version or latest
    for name, value in (("from", from_version), ("to", to_version)):
        check_version_number(value, latest, name)
    before = runtime.app.definition_at(configuration_id, from_version)
    after = runtime.app.definition_at(configuration_id, to_version)
    changes = diff_definitions(before, after)
    return ConfigurationDiff.model_validate(
        {"from": from_version, "to": to_version, "changes": changes, "summary": describe(changes)}
    )


@router.post("/api/v1/configurations/{configuration_id}/restore", response_model=Configuration, responses=VERSIONED)
def restore_configuration(
    configuration_id: UUID,
    body: RestoreRequest,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Configuration:
    """Make the configuration what it was at a version or time, as a new version (history is kept)."""
    manage_configuration(runtime, who, configuration_id)
    if (body.version is None) == (body.as_of is None):
        raise ValidationError('give either "version" or "as_of"', field="version")
    version = body.version if body.version is not None else version_at(runtime, configuration_id, str(body.as_of))
    outcome = runtime.app.restore_configuration(
        configuration_id, version, actor=who.user, reason=body.reason, expected_version=if_match
    )
    return _result(response, outcome)


@router.post("/api/v1/configurations/{configuration_id}/retire", response_model=Configuration, responses=VERSIONED)
def retire_configuration(
    configuration_id: UUID,
    body: RetireRequest,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Configuration:
    """Retire a configuration with no live deployment: readable with its history, no deploys or changes."""
    manage_configuration(runtime, who, configuration_id)
    outcome = runtime.app.retire_configuration(
        configuration_id, actor=who.user, reason=body.reason, expected_version=if_match
    )
    return _result(response, outcome)


@router.patch("/api/v1/configurations/{configuration_id}", response_model=Configuration, responses=VERSIONED)
def revise_configuration(
    configuration_id: UUID,
    body: ConfigurationPatch,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Configuration:
    """Rename, or replace description / networks / machines."""
    manage_configuration(runtime, who, configuration_id)
    changes = body.fields()
    if body.machines is not None:
        changes["machines"] = [machine_dict(m) for m in body.machines]
    outcome = runtime.app.revise_configuration(
        configuration_id, changes, actor=who.user, reason=body.reason, expected_version=if_match
    )
    return _result(response, outcome)


@router.post(
    "/api/v1/configurations/{configuration_id}/machines",
    status_code=status.HTTP_201_CREATED,
    response_model=Configuration,
    responses=VERSIONED,
)
def add_machine(
    configuration_id: UUID,
    body: MachineBody,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Configuration:
    """Add a machine."""
    manage_configuration(runtime, who, configuration_id)
    outcome = runtime.app.add_machine(
        configuration_id,
        machine_dict(body),
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
    )
    return _result(response, outcome)


@router.put(
    "/api/v1/configurations/{configuration_id}/machines/{name}", response_model=Configuration, responses=VERSIONED
)
def change_machine(
    configuration_id: UUID,
    name: str,
    body: MachineBody,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Configuration:
    """Replace a machine's definition."""
    manage_configuration(runtime, who, configuration_id)
    outcome = runtime.app.change_machine(
        configuration_id,
        name,
        machine_dict(body),
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
    )
    return _result(response, outcome)


@router.delete(
    "/api/v1/configurations/{configuration_id}/machines/{name}", response_model=Configuration, responses=VERSIONED
)
def remove_machine(
    configuration_id: UUID,
    name: str,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    reason: str | None = Query(None, max_length=2048),
) -> Configuration:
    """Remove a machine."""
    manage_configuration(runtime, who, configuration_id)
    outcome = runtime.app.remove_machine(
        configuration_id, name, actor=who.user, reason=reason, expected_version=if_match
    )
    return _result(response, outcome)


@router.post(
    "/api/v1/configurations/{configuration_id}/networks",
    status_code=status.HTTP_201_CREATED,
    response_model=Configuration,
    responses=VERSIONED,
)
def add_network(
    configuration_id: UUID,
    body: NetworkBody,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Configuration:
    """Add a network."""
    manage_configuration(runtime, who, configuration_id)
    outcome = runtime.app.add_network(
        configuration_id,
        body.fields(),
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
    )
    return _result(response, outcome)


@router.delete(
    "/api/v1/configurations/{configuration_id}/networks/{name}", response_model=Configuration, responses=VERSIONED
)
def remove_network(
    configuration_id: UUID,
    name: str,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    reason: str | None = Query(None, max_length=2048),
) -> Configuration:
    """Remove a network that no machine uses."""
    manage_configuration(runtime, who, configuration_id)
    outcome = runtime.app.remove_network(
        configuration_id, name, actor=who.user, reason=reason, expected_version=if_match
    )
    return _result(response, outcome)
