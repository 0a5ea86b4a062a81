"""Deployments: configuration versions instantiated in a stage; promote, demote, undeploy."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Response, status
from pydantic import Field

from api.access import (
    operate_deployment,
    operate_stage,
    read_configuration,
    read_deployment,
    read_service,
    readable_service_ids,
)
from api.deps import IfMatchDep, MinPosition, PrincipalDep, RuntimeDep, set_version
from api.gate import governed
from api.responses import errors
from api.responses.deployments import Deployment, DeploymentList
from api.routing import OneHopRoute
from api.schemas import CopyRequest, DeployRequest, Governed, RevertRequest, SnapshotRequest, SwapRequest
from api.views import deployment_view
from domain.deployment import STATES
from domain.errors import ValidationError

router = APIRouter(
    route_class=OneHopRoute,
    tags=["deployments"],
    responses=errors(401, 403, 404, 422, 503),
    dependencies=[Depends(governed)],
)


def _result(response: Response, outcome: Any) -> Deployment:
    set_version(response, outcome.value.version, outcome.position)
    response.headers["Location"] = f"/api/v1/deployments/{outcome.value.id}"
    return Deployment.model_validate({**deployment_view(outcome.value), "position": outcome.position})


@router.post(
    "/api/v1/configurations/{configuration_id}/deployments",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(409, 413, 415),
)
def deploy(
    configuration_id: UUID,
    body: DeployRequest,
    runtime: RuntimeDep,
    who: PrincipalDep,
    response: Response,
) -> Deployment:
    """Deploy a configuration version into a stage; the VMs are built in the background."""
    configuration = read_configuration(runtime, who, configuration_id)
    operate_stage(runtime, who, runtime.app.service(configuration.service_id), body.stage, "deploy")
    outcome = runtime.app.deploy(
        configuration_id,
        body.stage,
        actor=who.user,
        reason=body.reason,
        configuration_version=body.configuration_version,
        lease=body.lease,
        expires_at=body.expires_at,
        fence=body.fence,
    )
    return _result(response, outcome)


@router.post(
    "/api/v1/deployments/{deployment_id}/copy",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(409, 413, 415),
)
def copy_deployment(
    deployment_id: UUID, body: CopyRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Deployment:
    """Copy a running deployment's VMs into a stage (read on the source, operator on the target stage)."""
    source = read_deployment(runtime, who, deployment_id)
    operate_stage(runtime, who, runtime.app.service(source.service_id), body.stage, "copy into")
    outcome = runtime.app.copy_deployment(
        deployment_id, body.stage, actor=who.user, reason=body.reason, fence=body.fence
    )
    return _result(response, outcome)


@router.post(
    "/api/v1/deployments/{deployment_id}/snapshot",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(409, 413, 415),
)
def snapshot_deployment(
    deployment_id: UUID, body: SnapshotRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Deployment:
    """Snapshot every machine of the deployment (operator of its stage)."""
    operate_deployment(runtime, who, deployment_id, "snapshot")
    outcome = runtime.app.snapshot_deployment(deployment_id, body.name, actor=who.user, reason=body.reason)
    return _result(response, outcome)


@router.post(
    "/api/v1/deployments/{deployment_id}/revert",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(409, 413, 415),
)
def revert_deployment(
    deployment_id: UUID, body: RevertRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Deployment:
    """Revert every machine of the deployment to one of its snapshots, then power them on."""
    operate_deployment(runtime, who, deployment_id, "revert")
    outcome = runtime.app.revert_deployment(deployment_id, body.snapshot, actor=who.user, reason=body.reason)
    return _result(response, outcome)


@router.post(
    "/api/v1/deployments/{deployment_id}/swap",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(409, 413, 415),
)
def swap_deployment(
    deployment_id: UUID, body: SwapRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Deployment:
    """Put this tested copy in the place of `replaces` (operator of that deployment's stage)."""
    replaces = parse_id(body.replaces, "replaces")
    read_deployment(runtime, who, deployment_id)
    operate_deployment(runtime, who, replaces, "swap")
    outcome = runtime.app.swap_deployment(
        deployment_id,
        replaces,
        actor=who.user,
        keep_previous=body.keep_previous,
        reason=body.reason,
        destroy_vms=body.destroy_vms,
    )
    return _result(response, outcome)


@router.post(
    "/api/v1/deployments/{deployment_id}/swap-back",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(409, 413, 415),
)
def swap_back(
    deployment_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response, body: Governed | None = Body(None)
) -> Deployment:
    """Give a replaced (and kept) deployment its place back from the copy that replaced it."""
    operate_deployment(runtime, who, deployment_id, "swap back")
    outcome = runtime.app.swap_back(deployment_id, actor=who.user, reason=body.reason if body else None)
    return _result(response, outcome)


def parse_id(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(f"{field} must be a deployment id", field=field) from None


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque cursor: the (requested_at, id) of a page's last row, base64url of JSON."""
    return base64.urlsafe_b64encode(json.dumps([row["requested_at"], row["id"]]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        requested_at, deployment_id = json.loads(raw)
        if isinstance(requested_at, str) and isinstance(deployment_id, str):
            return requested_at, str(UUID(deployment_id))
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ValidationError("cursor must be the next_cursor of a previous page", field="cursor")


@router.get("/api/v1/deployments", response_model=DeploymentList)
def list_deployments(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    service: UUID | None = Query(None, description="Service id"),
    stage: str | None = Query(None, description="Stage name"),
    state: str | None = Query(None, description=f"One of: {', '.join(STATES)}"),
    configuration: UUID | None = Query(None, description="Configuration id"),
    cursor: str | None = Query(None, max_length=512, description="`next_cursor` of the previous page"),
    limit: int = Query(500, ge=1, le=5000),
    drifted: bool | None = Query(None, description="true: only deployments whose VMs differ from their history"),
) -> DeploymentList:
    """Deployments of the services you can read, newest first, a page at a time (`next_cursor`)."""
    if service is not None:
        read_service(runtime, who, service)
    if state is not None and state not in STATES:
        raise ValidationError(f"state must be one of {', '.join(STATES)}", field="state")
    after = decode_cursor(cursor) if cursor is not None else None
    readable = readable_service_ids(runtime, who)
    position = runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
    rows = runtime.read_models.deployments(
        str(service) if service else None,
        stage,
        state,
        str(configuration) if configuration else None,
        limit + 1,
        service_ids=readable,
        after=after,
        drifted=drifted,
    )
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1]) if len(rows) > limit else None
    return DeploymentList.model_validate({"items": items, "next_cursor": next_cursor, "position": position})


@router.get("/api/v1/deployments/{deployment_id}", response_model=Deployment)
def get_deployment(deployment_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Deployment:
    """One deployment with each machine's state."""
    deployment = read_deployment(runtime, who, deployment_id)
    position = runtime.app.head()
    set_version(response, deployment.version, position)
    return Deployment.model_validate({**deployment_view(deployment), "position": position})


def _command(name: str, summary: str) -> None:
    def endpoint(
        deployment_id: UUID,
        runtime: RuntimeDep,
        who: PrincipalDep,
        if_match: IfMatchDep,
        response: Response,
        body: Governed | None = Body(None),
    ) -> Deployment:
        operate_deployment(runtime, who, deployment_id, name.removesuffix("_deployment"))
        command = getattr(runtime.app, name)
        outcome = command(
            deployment_id,
            actor=who.user,
            reason=body.reason if body else None,
            expected_version=if_match,
        )
        return _result(response, outcome)

    endpoint.__doc__ = summary
    endpoint.__name__ = name
    action = name.removesuffix("_deployment")
    router.add_api_route(
        f"/api/v1/deployments/{{deployment_id}}/{action}",
        endpoint,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        name=name,
        response_model=Deployment,
        responses=errors(409, 412, 413, 415),
    )


_command("promote", "Move the deployment to the next stage of its service.")
_command("demote", "Move the deployment to the previous stage of its service.")
_command("retry_deployment", "Provision a failed deployment again.")


class UndeployRequest(Governed):
    destroy_vms: bool | None = Field(
        None,
        description="Captured deployments only: true destroys their VMs; otherwise Stagekeeper lets go of them "
        "(removes its tags, leaves them running). Stagekeeper's own deployments are always destroyed.",
    )


@router.post(
    "/api/v1/deployments/{deployment_id}/undeploy",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(409, 412, 413, 415),
)
def undeploy(
    deployment_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    body: UndeployRequest | None = Body(None),
) -> Deployment:
    """Power off and destroy every VM of the deployment (a captured one: let go of them, unless destroy_vms)."""
    operate_deployment(runtime, who, deployment_id, "undeploy")
    outcome = runtime.app.undeploy(
        deployment_id,
        actor=who.user,
        reason=body.reason if body else None,
        expected_version=if_match,
        destroy_vms=body.destroy_vms if body else None,
    )
    return _result(response, outcome)
