"""Drift: compare a deployment with vCenter on demand, adopt or revert a difference, orphan VMs."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Body, Path, Response, status

from api.access import operate_deployment, require_admin
from api.deps import PrincipalDep, RuntimeDep, set_version
from api.responses import errors
from api.responses.deployments import Deployment
from api.responses.drift import OrphanList
from api.routing import OneHopRoute
from api.schemas import Reason
from api.views import deployment_view
from domain.application import Outcome
from domain.deployment import Deployment as DeploymentAggregate

router = APIRouter(route_class=OneHopRoute, tags=["drift"], responses=errors(401, 403, 404, 409, 413, 415, 422, 503))
FieldPath = Path(description="'<machine>.<field>', e.g. 'db.memory_mib' (as the deployment's drift lists it)")


def _answer(response: Response, outcome: Outcome[DeploymentAggregate]) -> Deployment:
    set_version(response, outcome.value.version, outcome.position)
    return Deployment.model_validate({**deployment_view(outcome.value), "position": outcome.position})


@router.post("/api/v1/deployments/{deployment_id}/check", response_model=Deployment)
def check(deployment_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Deployment:
    """Compare the deployment's VMs with its history now; new differences are recorded as drift."""
    operate_deployment(runtime, who, deployment_id, "check")
    return _answer(response, runtime.app.check_drift(deployment_id, actor=who.user))


@router.post("/api/v1/deployments/{deployment_id}/drift/{field}/adopt", response_model=Deployment)
def adopt(
    deployment_id: UUID, body: Reason, runtime: RuntimeDep, who: PrincipalDep, response: Response,
    field: str = FieldPath,
) -> Deployment:  # fmt: skip
    """Record vCenter's value as the truth (CPU, memory, disks: a new configuration version); reason required."""
    operate_deployment(runtime, who, deployment_id, "adopt drift on")
    return _answer(response, runtime.app.adopt_drift(deployment_id, field, actor=who.user, reason=body.reason))


@router.post(
    "/api/v1/deployments/{deployment_id}/drift/{field}/revert",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Deployment,
)
def revert(
    deployment_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response, body: Reason | None = Body(None),
    field: str = FieldPath,
) -> Deployment:  # fmt: skip
    """Put the VM back as the history says (the process manager reconfigures it)."""
    operate_deployment(runtime, who, deployment_id, "revert drift on")
    reason = body.reason if body else None
    return _answer(response, runtime.app.revert_drift(deployment_id, field, actor=who.user, reason=reason))


@router.get("/api/v1/drift/orphans", response_model=OrphanList)
def orphans(runtime: RuntimeDep, who: PrincipalDep) -> OrphanList:
    """VMs tagged by Stagekeeper that no deployment's history holds (administrators)."""
    require_admin(who, "list orphan VMs")
    return OrphanList.model_validate({"items": runtime.app.drift_orphans()})
