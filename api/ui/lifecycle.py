"""Deployment-wide actions beyond promote/demote: copy (fenced or not), snapshot and revert, swap
into the copied deployment's place and swap back, upgrade in place, power the whole deployment.

Each form goes through the API's permission check (api/access.py) and then the same command as
the API route; the domain refuses what the state does not allow, with the same message. These
routes are registered before api/ui/deployments.py's catch-all `/{deployment_id}/{action}`.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import operate_deployment, operate_stage, read_deployment
from api.routes.deployments import parse_id
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, redirect
from api.ui.forms import checked, number, optional, text

router = APIRouter(prefix="/ui/deployments", route_class=ConsoleRoute, include_in_schema=False)


@router.post("/{deployment_id}/upgrade")
async def upgrade(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Upgrade in place to another version of the configuration (only the differences change)."""
    operate_deployment(runtime, session.principal, deployment_id, "upgrade")
    form = await request.form()
    version = text(form, "expected")
    runtime.app.upgrade_deployment(
        deployment_id, number(form, "version"), actor=session.user, reason=optional(form, "reason"),
        expected_version=int(version) if version.isdigit() else None,
    )  # fmt: skip
    return redirect(request, f"/ui/deployments/{deployment_id}")


@router.post("/{deployment_id}/power")
async def power(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Power every machine on (in start order) or off (in reverse order)."""
    form = await request.form()
    action = text(form, "action")
    operate_deployment(runtime, session.principal, deployment_id, f"power {action}")
    runtime.app.power_deployment(deployment_id, action, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/deployments/{deployment_id}#consoles")


@router.post("/{deployment_id}/copy")
async def copy(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Copy the running VMs into a stage: read access to the source, operator of the target stage."""
    form = await request.form()
    stage = text(form, "stage")
    source = read_deployment(runtime, session.principal, deployment_id)
    operate_stage(runtime, session.principal, runtime.app.service(source.service_id), stage, "copy into")
    outcome = runtime.app.copy_deployment(
        deployment_id, stage, actor=session.user, reason=optional(form, "reason"), fence=checked(form, "fence")
    )
    return redirect(request, f"/ui/deployments/{outcome.value.id}")


@router.post("/{deployment_id}/snapshot")
async def snapshot(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Snapshot every machine under one name."""
    operate_deployment(runtime, session.principal, deployment_id, "snapshot")
    form = await request.form()
    runtime.app.snapshot_deployment(deployment_id, text(form, "name"), actor=session.user,
                                    reason=optional(form, "reason"))  # fmt: skip
    return redirect(request, f"/ui/deployments/{deployment_id}#snapshots")


@router.post("/{deployment_id}/revert")
async def revert(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Revert every machine to one of the deployment's snapshots (then power them on)."""
    operate_deployment(runtime, session.principal, deployment_id, "revert")
    form = await request.form()
    runtime.app.revert_deployment(deployment_id, text(form, "snapshot"), actor=session.user,
                                  reason=optional(form, "reason"))  # fmt: skip
    return redirect(request, f"/ui/deployments/{deployment_id}#snapshots")


@router.post("/{deployment_id}/swap")
async def swap(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Put this tested copy in the place of the deployment it copies (operator of that one's stage)."""
    form = await request.form()
    replaces = parse_id(text(form, "replaces"), "replaces")
    read_deployment(runtime, session.principal, deployment_id)
    operate_deployment(runtime, session.principal, replaces, "swap")
    runtime.app.swap_deployment(
        deployment_id, replaces, actor=session.user, keep_previous=checked(form, "keep_previous"),
        reason=optional(form, "reason"),
    )  # fmt: skip
    return redirect(request, f"/ui/deployments/{deployment_id}")


@router.post("/{deployment_id}/swap-back")
async def swap_back(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Give this replaced (and kept) deployment its place back from the copy that replaced it."""
    operate_deployment(runtime, session.principal, deployment_id, "swap back")
    form = await request.form()
    runtime.app.swap_back(deployment_id, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/deployments/{deployment_id}")
