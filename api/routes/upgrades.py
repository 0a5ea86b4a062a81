"""Upgrade a deployment in place to another configuration version; power a whole deployment."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Response, status
from pydantic import Field

from api.access import operate_deployment
from api.deps import IfMatchDep, PrincipalDep, RuntimeDep, set_version
from api.gate import governed
from api.responses import errors
from api.responses.deployments import Deployment
from api.routing import OneHopRoute
from api.schemas import Governed
from api.views import deployment_view
from domain.application import Outcome
from domain.deployment import Deployment as DeploymentAggregate

router = APIRouter(
    route_class=OneHopRoute,
    tags=["deployments"],
    responses=errors(401, 403, 404, 409, 413, 415, 422, 503),
    dependencies=[Depends(governed)],
)


class UpgradeRequest(Governed):
    version: int = Field(description="The configuration version to bring the deployment to (up or down)")


class DeploymentPowerRequest(Governed):
    action: Literal["on", "off"] = Field(description="on: in start order, with its waits; off: in reverse order")


def _answer(response: Response, outcome: Outcome[DeploymentAggregate]) -> Deployment:
    set_version(response, outcome.value.version, outcome.position)
    return Deployment.model_validate({**deployment_view(outcome.value), "position": outcome.position})


@router.post(
    "/api/v1/deployments/{deployment_id}/upgrade",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
    responses=errors(412),
)
def upgrade(
    deployment_id: UUID,
    body: UpgradeRequest,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Deployment:
    """Bring a deployed deployment to another version of its configuration in place (only the differences)."""
    operate_deployment(runtime, who, deployment_id, "upgrade")
    outcome = runtime.app.upgrade_deployment(
        deployment_id, body.version, actor=who.user, reason=body.reason, expected_version=if_match
    )
    return _answer(response, outcome)


@router.post(
    "/api/v1/deployments/{deployment_id}/power", status_code=status.HTTP_202_ACCEPTED, response_model=Deployment
)
def power(
    deployment_id: UUID, body: DeploymentPowerRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Deployment:
    """Power every machine of the deployment on (in start order) or off (in reverse order); each one audited."""
    operate_deployment(runtime, who, deployment_id, f"power {body.action}")
    outcome = runtime.app.power_deployment(deployment_id, body.action, actor=who.user, reason=body.reason)
    return _answer(response, outcome)
