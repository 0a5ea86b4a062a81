"""Previews of a promote, swap or upgrade: what would change where the deployment lands."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query

from api.access import read_deployment
from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.drift import Preview
from api.routing import OneHopRoute

router = APIRouter(route_class=OneHopRoute, tags=["deployments"], responses=errors(401, 403, 404, 409, 422, 503))


@router.get("/api/v1/deployments/{deployment_id}/promote-preview", response_model=Preview)
def promote_preview(deployment_id: UUID, runtime: RuntimeDep, who: PrincipalDep) -> Preview:
    """What promoting the deployment would change in the next stage (machines, VMs, addresses)."""
    read_deployment(runtime, who, deployment_id)
    return Preview.model_validate(runtime.app.move_preview(deployment_id, "promote"))


@router.get("/api/v1/deployments/{deployment_id}/swap-preview", response_model=Preview)
def swap_preview(
    deployment_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    replaces: UUID | None = Query(None, description="The deployment it would replace (default: the one it copies)"),
    keep_previous: bool = Query(True, description="Keep the replaced deployment (powered off)"),
) -> Preview:
    """What swapping this copy in would change in the replaced deployment's stage."""
    read_deployment(runtime, who, deployment_id)
    if replaces is not None:
        read_deployment(runtime, who, replaces)
    return Preview.model_validate(runtime.app.swap_preview(deployment_id, replaces, keep_previous))


@router.get("/api/v1/deployments/{deployment_id}/upgrade-preview", response_model=Preview)
def upgrade_preview(
    deployment_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    version: int = Query(description="The configuration version the upgrade would bring it to"),
) -> Preview:
    """What upgrading the deployment in place to `version` would change."""
    read_deployment(runtime, who, deployment_id)
    return Preview.model_validate(runtime.app.upgrade_preview(deployment_id, version))
