"""The console's drift actions (check now, adopt, revert) and the previews shown in the promote,
swap and upgrade confirmations. Registered before api/ui/deployments.py's catch-all POST route;
each goes through the API's permission check and the same command or query as the API."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.access import operate_deployment, read_deployment, require_admin
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render
from api.ui.forms import optional
from domain.errors import ConflictError, NotFoundError, ValidationError

router = APIRouter(prefix="/ui/deployments", route_class=ConsoleRoute, include_in_schema=False)
PREVIEWS = ("promote", "swap", "upgrade")


@router.post("/{deployment_id}/check")
def check(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Compare the deployment with vCenter now."""
    operate_deployment(runtime, session.principal, deployment_id, "check")
    runtime.app.check_drift(deployment_id, actor=session.user)
    return redirect(request, f"/ui/deployments/{deployment_id}#drift")


@router.post("/{deployment_id}/drift/{field}/{action}")
async def resolve(
    request: Request, deployment_id: UUID, field: str, action: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    """Adopt vCenter's value (a reason is required) or revert the VM to the history's."""
    operate_deployment(runtime, session.principal, deployment_id, "resolve drift on")
    if action not in ("adopt", "revert"):
        raise NotFoundError(f"no drift action '{action}' (one of: adopt, revert)", field="action")
    reason = optional(await request.form(), "reason")
    if action == "adopt":
        runtime.app.adopt_drift(deployment_id, field, actor=session.user, reason=reason)
    else:
        runtime.app.revert_drift(deployment_id, field, actor=session.user, reason=reason)
    return redirect(request, f"/ui/deployments/{deployment_id}#drift")


@router.get("/{deployment_id}/preview/{kind}")
def preview(
    request: Request, deployment_id: UUID, kind: str, runtime: RuntimeDep, session: SessionDep,
    version: int | None = Query(None, ge=1), replaces: UUID | None = Query(None),
) -> Response:  # fmt: skip
    """What the command would change (a fragment for its confirmation dialog)."""
    read_deployment(runtime, session.principal, deployment_id)
    if kind not in PREVIEWS:
        raise NotFoundError(f"no preview '{kind}' (one of: {', '.join(PREVIEWS)})", field="kind")
    try:
        if kind == "promote":
            answer = runtime.app.move_preview(deployment_id, "promote")
        elif kind == "swap":
            answer = runtime.app.swap_preview(deployment_id, replaces)
        else:
            answer = runtime.app.upgrade_preview(deployment_id, version)
    except (ConflictError, ValidationError) as refused:
        return render(request, "fragments/preview.html", {"preview": None, "refused": refused.message})
    return render(request, "fragments/preview.html", {"preview": answer, "refused": None})


orphans_router = APIRouter(prefix="/ui/drift", route_class=ConsoleRoute, include_in_schema=False)


@orphans_router.get("/orphans")
def orphans(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """VMs tagged by Stagekeeper that no history holds (administrators; a read of vCenter)."""
    require_admin(session.principal, "list orphan VMs")
    return render(
        request, "orphans.html", {"title": "Orphan VMs", "nav": "board", "orphans": runtime.app.drift_orphans()}
    )
