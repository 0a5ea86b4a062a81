"""Authorization of API calls: find the service a call concerns and apply domain/permissions.

Every route calls one of these before acting; the rules themselves live in the domain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from adapters.runtime import Runtime
from api.auth import Principal
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.errors import PermissionDeniedError
from domain.permissions import can_capture, can_manage, can_operate, can_read
from domain.service import Service


def _grants(service: Service) -> list[dict[str, object]]:
    return list(service.grants.values())


def require_admin(who: Principal, action: str) -> None:
    if not who.is_admin:
        raise PermissionDeniedError(f"{who.user} may not {action}: administrators only")


def _check_readable(who: Principal, service: Service, subject: str) -> None:
    if not can_read(_grants(service), who.caller):
        # Named by what the caller asked for, never by the service's name or id: a caller with no
        # role on the service learns nothing from the refusal.
        raise PermissionDeniedError(f"{who.user} holds no role on {subject}")


def _readable(runtime: Runtime, who: Principal, service_id: UUID, subject: str) -> Service:
    service = runtime.app.service(service_id)
    _check_readable(who, service, subject)
    return service


def read_service(runtime: Runtime, who: Principal, service_id: UUID) -> Service:
    return _readable(runtime, who, service_id, f"service {service_id}")


def _check_manage(who: Principal, service: Service) -> None:
    _check_readable(who, service, f"service {service.id}")
    if not can_manage(_grants(service), who.caller):
        raise PermissionDeniedError(f"{who.user} is not an owner of service '{service.name}'")


def manage_service(runtime: Runtime, who: Principal, service_id: UUID) -> Service:
    service = runtime.app.service(service_id)
    _check_manage(who, service)
    return service


def managing(who: Principal) -> Callable[[Service], None]:
    """The check of `manage_service` on a service a command has in hand (its `authorize`): the
    command reads the service once, and decides about the version it writes against."""
    return lambda service: _check_manage(who, service)


def read_configuration(runtime: Runtime, who: Principal, configuration_id: UUID) -> Configuration:
    configuration = runtime.app.configuration(configuration_id)
    _readable(runtime, who, configuration.service_id, f"the service of configuration {configuration_id}")
    return configuration


def manage_configuration(runtime: Runtime, who: Principal, configuration_id: UUID) -> Configuration:
    configuration = read_configuration(runtime, who, configuration_id)
    manage_service(runtime, who, configuration.service_id)
    return configuration


def operate_stage(runtime: Runtime, who: Principal, service: Service, stage_name: str, action: str) -> None:
    stage = service.stage(stage_name)
    if not can_operate(_grants(service), who.caller, stage):
        rule = (
            f"'{stage['name']}' is restricted: only its stage-operators may {action} there"
            if stage.get("restricted")
            else f"{who.user} is neither an owner of '{service.name}' nor a stage-operator of '{stage['name']}'"
        )
        raise PermissionDeniedError(rule)


def capture_stage(runtime: Runtime, who: Principal, service_id: UUID, stage_name: str) -> dict[str, Any]:
    """Capture into a stage: an owner of the service who is also a stage-operator of the stage."""
    service = read_service(runtime, who, service_id)
    stage = service.stage(stage_name)
    if not can_capture(_grants(service), who.caller, stage):
        raise PermissionDeniedError(
            f"{who.user} may not capture into '{stage['name']}': it takes an owner of '{service.name}' who is "
            f"also a stage-operator of '{stage['name']}'"
        )
    return stage


def read_deployment(runtime: Runtime, who: Principal, deployment_id: UUID) -> Deployment:
    deployment = runtime.app.deployment(deployment_id)
    _readable(runtime, who, deployment.service_id, f"the service of deployment {deployment_id}")
    return deployment


def operate_deployment(runtime: Runtime, who: Principal, deployment_id: UUID, action: str) -> None:
    """Promote: operator of the target stage (into). Demote, undeploy, retry: of the current stage."""
    deployment = read_deployment(runtime, who, deployment_id)
    service = runtime.app.service(deployment.service_id)
    stage = service.next_stage(deployment.stage, +1)["name"] if action == "promote" else deployment.stage
    operate_stage(runtime, who, service, stage, action)


def readable_service_ids(runtime: Runtime, who: Principal) -> set[str] | None:
    """The services the caller may read (None: all of them, for admins)."""
    if who.is_admin:
        return None
    return runtime.read_models.readable_services(who.user, who.groups)
