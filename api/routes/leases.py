"""Leases: change a deployment's lease, and the dry-run report of what would expire or be reaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.access import operate_deployment, readable_service_ids
from api.deps import IfMatchDep, MinPosition, PrincipalDep, RuntimeDep, set_version
from api.responses import errors
from api.responses.deployments import Deployment
from api.responses.leases import LeaseReport
from api.routing import OneHopRoute
from api.schemas import LeaseChange
from api.views import deployment_view
from domain import leases
from domain.errors import NotFoundError, ValidationError
from domain.processes.leases import report
from projections.leases import lease_candidates

router = APIRouter(route_class=OneHopRoute, tags=["leases"], responses=errors(401, 403, 404, 422, 503))
MAX_REPORT_DAYS = 366


@router.patch(
    "/api/v1/deployments/{deployment_id}/lease", response_model=Deployment, responses=errors(409, 412, 413, 415)
)
def change_lease(
    deployment_id: UUID,
    body: LeaseChange,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Deployment:
    """Extend a deployment's lease (`extend_by`), set its end (`expires_at`) or keep it from idle reaping."""
    operate_deployment(runtime, who, deployment_id, "change the lease of a deployment")
    outcome = runtime.app.change_lease(
        deployment_id, body.fields(), actor=who.user, reason=body.reason, expected_version=if_match
    )
    set_version(response, outcome.value.version, outcome.position)
    return Deployment.model_validate({**deployment_view(outcome.value), "position": outcome.position})


@router.get("/api/v1/leases/report", response_model=LeaseReport)
def lease_report(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    dry_run: bool = Query(True, description="Always true: the report lists, it never acts"),
    days: int = Query(7, ge=0, le=MAX_REPORT_DAYS, description="Look this many days ahead"),
) -> LeaseReport:
    """What would expire or be reaped from now to `days` ahead, in the services you may read."""
    if not dry_run:
        raise ValidationError("the report only lists (dry_run=true); the scheduler acts on its own", field="dry_run")
    position = runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
    runtime.read_models.wait("leases", min_position, runtime.settings.read_wait_seconds)
    services: dict[str, Any] = {}

    def policy(service_id: str, stage: str) -> leases.LeasePolicy | None:
        if service_id not in services:
            services[service_id] = runtime.app.service(UUID(service_id))
        try:
            return leases.policy_of(services[service_id].stage(stage))
        except NotFoundError:
            return None

    now = runtime.clock.now()
    until = now + timedelta(days=days)
    rows = lease_candidates(runtime.store, readable_service_ids(runtime, who))
    items = report(rows, policy, now, until)
    return LeaseReport.model_validate(
        {"dry_run": True, "now": leases.stamp(now), "until": leases.stamp(until), "items": items, "position": position}
    )
