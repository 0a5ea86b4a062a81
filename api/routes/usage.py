"""Resource usage per service and stage, stage totals with quotas, and datastore usage."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query

from api import usage
from api.access import read_service
from api.deps import MinPosition, PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.usage import DatastoreUsage, ServiceUsage, StageTotals
from api.routing import OneHopRoute

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["usage"], responses=errors(401, 422, 503))

FROM = Query(None, alias="from", description="ISO 8601 start (default: 24 hours before `to`)")
TO = Query(None, description="ISO 8601 end (default: now)")
STEP = Query(None, description=f"Seconds between points (default: about {usage.DEFAULT_POINTS} points)")


@router.get(
    "/services/{service_id}/usage",
    response_model=ServiceUsage,
    response_model_by_alias=True,
    responses=errors(403, 404),
)
def service_usage(
    service_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    stage: str | None = Query(None, description="One stage (default: the whole service)"),
    start: str | None = FROM,
    to: str | None = TO,
    step: int | None = STEP,
) -> ServiceUsage:
    """Allocated and used resources of a service (or one stage) from `from` to `to`, one point per `step`."""
    service = read_service(runtime, who, service_id)
    span = usage.window(runtime, start, to, step)
    return ServiceUsage.model_validate(usage.service_usage(runtime, service, stage, span, min_position))


@router.get("/usage/stages", response_model=StageTotals)
def stage_totals(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    as_of: str | None = Query(None, description="ISO 8601 time: what every stage held then (default: now)"),
) -> StageTotals:
    """Allocated resources and quota of every stage of the services you may read."""
    return StageTotals.model_validate(usage.stage_totals(runtime, who, as_of, min_position))


@router.get("/datastores/usage", response_model=DatastoreUsage, response_model_by_alias=True)
def datastore_usage(
    runtime: RuntimeDep,
    who: PrincipalDep,
    start: str | None = FROM,
    to: str | None = TO,
    step: int | None = STEP,
) -> DatastoreUsage:
    """Disk use per datastore (administrators) and per datastore, service and stage over time."""
    span = usage.window(runtime, start, to, step)
    return DatastoreUsage.model_validate(usage.datastore_usage(runtime, who, span))
