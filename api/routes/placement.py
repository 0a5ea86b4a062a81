"""Placement across hosts: rebalance a deployment (an explicit, audited command)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Response, status

from api.access import operate_deployment
from api.deps import PrincipalDep, RuntimeDep, set_version
from api.gate import governed
from api.responses import errors
from api.responses.placement import RebalanceMove, RebalancePlan
from api.routing import OneHopRoute
from api.schemas import RebalanceRequest

router = APIRouter(
    route_class=OneHopRoute,
    tags=["deployments"],
    responses=errors(401, 403, 404, 422, 503),
    dependencies=[Depends(governed)],
)


@router.post(
    "/api/v1/deployments/{deployment_id}/rebalance",
    status_code=status.HTTP_200_OK,
    response_model=RebalancePlan,
    responses=errors(409, 413, 415, 502),
)
def rebalance_deployment(
    deployment_id: UUID, body: RebalanceRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> RebalancePlan:
    """Plan moves of the deployment's machines between hosts (anti-affinity, affinity groups, hosts out of
    service); unless dry_run, record the plan and carry it out in the background (operator of its stage)."""
    operate_deployment(runtime, who, deployment_id, "rebalance")
    outcome = runtime.app.rebalance_deployment(deployment_id, body.dry_run, actor=who.user, reason=body.reason)
    plan = outcome.value
    recorded = not plan.dry_run and bool(plan.moves)
    if recorded:
        response.status_code = status.HTTP_202_ACCEPTED
    set_version(response, plan.deployment.version, outcome.position)
    return RebalancePlan(
        deployment_id=plan.deployment.id, dry_run=plan.dry_run, recorded=recorded,
        moves=[RebalanceMove.model_validate(m.to_dict()) for m in plan.moves],
        version=plan.deployment.version, position=outcome.position,
    )  # fmt: skip
