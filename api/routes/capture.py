"""Capture: bring running VMs under management as a configuration version and an adopted deployment."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid5

from fastapi import APIRouter, Response, status
from pydantic import Field

from adapters.runtime import Runtime
from api.access import capture_stage, readable_service_ids
from api.deps import PrincipalDep, RuntimeDep, set_version
from api.responses import errors
from api.responses.capture import CaptureAnswer
from api.routing import OneHopRoute
from api.schemas import Reason
from api.views import deployment_view

router = APIRouter(route_class=OneHopRoute, tags=["capture"], responses=errors(401, 403, 404, 422, 503))
SCAN_LIMIT = 100_000  # live deployments searched for the holder of a claimed address (refusals only)


class CaptureRequest(Reason):
    configuration: str = Field(description="The configuration that records the VMs (a new version if it exists)")
    vms: list[Any] | None = Field(None, description='VM ids ("vm-42") or exact VM names', max_length=100)
    folder: str | None = Field(None, description="A VM folder: every VM in it, e.g. /DC0/vm/erp")
    resource_pool: str | None = Field(None, description="A pool: every VM in it, e.g. /DC0/host/DC0_C0/Resources/erp")
    dry_run: bool = Field(False, description="Answer what would be recorded and refused; record nothing")


def holders_from(rows: Iterable[dict[str, Any]], readable: set[str] | None) -> dict[UUID, str]:
    """Who holds each claim (owner = uuid5(deployment id, machine)), as a refusal may name it: in full
    for a service the caller can read (`readable`; None: every service), otherwise without naming
    the service, its deployment or configuration (a refusal never names a service you cannot read)."""
    holders: dict[UUID, str] = {}
    for row in rows:
        if row["state"] == "undeployed":
            continue
        for machine in row["machines"]:
            owner = uuid5(UUID(row["id"]), machine["name"])
            if readable is None or row["service_id"] in readable:
                holders[owner] = (
                    f"machine '{machine['name']}' of deployment {row['id']} "
                    f"('{row['configuration_name']}' in stage '{row['stage']}' of service {row['service_id']})"
                )
            else:
                holders[owner] = "a live deployment of a service you cannot read"
    return holders


def holder_in(runtime: Runtime, readable: set[str] | None) -> Any:
    """Names the live deployment machine holding a claim, read once per capture and only when a
    claim is refused."""
    holders: dict[UUID, str] = {}

    def resolve(owner: UUID) -> str | None:
        if not holders:
            holders.update(holders_from(runtime.read_models.deployments(limit=SCAN_LIMIT), readable))
        return holders.get(owner)

    return resolve


@router.post(
    "/api/v1/services/{service_id}/stages/{stage}/capture",
    status_code=status.HTTP_201_CREATED,
    response_model=CaptureAnswer,
    responses={
        200: {"model": CaptureAnswer, "description": "A dry run: nothing recorded"},
        **errors(409, 413, 415, 502),
    },
)
def capture(
    service_id: UUID, stage: str, body: CaptureRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> CaptureAnswer:
    """Capture running VMs (ids or names, a folder, or a pool) into a configuration and a deployment of the stage."""
    target = capture_stage(runtime, who, service_id, stage)
    holder = holder_in(runtime, readable_service_ids(runtime, who))
    outcome = runtime.app.capture(
        service_id, target["name"], body.configuration, actor=who.user, vms=body.vms, folder=body.folder,
        resource_pool=body.resource_pool, reason=body.reason, dry_run=body.dry_run, holder=holder,
    )  # fmt: skip
    result = outcome.value
    deployment = None
    if result.deployment is not None:
        set_version(response, result.deployment.version, outcome.position)
        response.headers["Location"] = f"/api/v1/deployments/{result.deployment.id}"
        deployment = {**deployment_view(result.deployment), "position": outcome.position}
    else:
        response.status_code = status.HTTP_200_OK
    return CaptureAnswer.model_validate(
        {
            "dry_run": result.dry_run, "configuration": result.configuration, "claims": result.claims,
            "refusals": result.refusals, "deployment": deployment, "position": outcome.position,
        }
    )  # fmt: skip
