"""Rebalancing from the console: the dry-run plan on a confirmation page, then the recorded command.

Both go through the API's permission check (api/access.py) and the same command as
POST /api/v1/deployments/{id}/rebalance. Registered before api/ui/deployments.py's catch-all.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import operate_deployment
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render
from api.ui.forms import optional

router = APIRouter(prefix="/ui/deployments", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/{deployment_id}/rebalance")
def rebalance_plan(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The moves a rebalance would make now (a dry run: nothing recorded), with the confirmation form."""
    operate_deployment(runtime, session.principal, deployment_id, "rebalance")
    plan = runtime.app.rebalance_deployment(deployment_id, True, actor=session.user).value
    context = {
        "title": f"Rebalance {plan.deployment.configuration_name} in {plan.deployment.stage}", "nav": "board",
        "deployment": plan.deployment, "moves": plan.moves,
    }  # fmt: skip
    return render(request, "rebalance.html", context)


@router.post("/{deployment_id}/rebalance")
async def rebalance(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Plan again and record the moves (the process manager carries them out)."""
    operate_deployment(runtime, session.principal, deployment_id, "rebalance")
    form = await request.form()
    runtime.app.rebalance_deployment(deployment_id, False, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/deployments/{deployment_id}#machines")
