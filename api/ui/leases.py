"""Leases: what will expire or be reaped soon (the dry-run report), with extend and keep buttons."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import operate_deployment, readable_service_ids
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render, wait_for
from api.ui.forms import optional, text
from domain import leases
from domain.errors import NotFoundError
from domain.processes.leases import report
from projections.leases import lease_candidates

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
DAYS = 14


@router.get("/leases")
def lease_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Every lease ending and every idle deployment reaped in the next two weeks, soonest first."""
    wait_for(runtime, "deployments", None)
    services: dict[str, Any] = {}

    def policy(service_id: str, stage: str) -> leases.LeasePolicy | None:
        if service_id not in services:
            services[service_id] = runtime.app.service(UUID(service_id))
        try:
            return leases.policy_of(services[service_id].stage(stage))
        except NotFoundError:
            return None

    now = runtime.clock.now()
    rows = lease_candidates(runtime.store, readable_service_ids(runtime, session.principal))
    items = report(rows, policy, now, now + timedelta(days=DAYS))
    names = {str(s["id"]): s["name"] for s in runtime.read_models.services()}
    listed = [{**i, "service_name": names.get(i["service_id"], "?")} for i in items]
    leased = [r for r in rows if (r["lease"] or {}).get("expires_at")]
    context = {"title": "Leases", "nav": "leases", "rows": listed, "days": DAYS, "leased": len(leased)}
    return render(request, "leases.html", context)


@router.post("/leases/{deployment_id}")
async def change_lease(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Extend a lease by a duration, or keep (or stop keeping) a deployment from idle reaping."""
    operate_deployment(runtime, session.principal, deployment_id, "change the lease of a deployment")
    form = await request.form()
    change: dict[str, Any] = {}
    if optional(form, "extend_by"):
        change["extend_by"] = text(form, "extend_by")
    if optional(form, "keep"):
        change["keep"] = text(form, "keep") == "true"
    runtime.app.change_lease(deployment_id, change, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, "/ui/leases")
