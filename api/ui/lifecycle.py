"""Deployment-wide actions beyond promote/demote: upgrade in place and power the whole deployment.

Each form goes through the API's permission check (api/access.py) and then the same command as
the API route; the domain refuses what the state does not allow, with the same message. These
routes are registered before api/ui/deployments.py's catch-all `/{deployment_id}/{action}`.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import operate_deployment
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, redirect
from api.ui.forms import number, optional, text

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
