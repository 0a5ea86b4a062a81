"""The approvals page: open requests with approve / reject forms, the stop-the-line switch (for
administrators) and the freeze windows that apply to everything."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import readable_service_ids, require_admin
from api.routes.governance import _approval, _visible
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render
from api.ui.forms import optional, text
from api.views_governance import approval_view, window_view

router = APIRouter(prefix="/ui/approvals", route_class=ConsoleRoute, include_in_schema=False)


@router.get("")
def approvals_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    who = session.principal
    position = runtime.app.head()
    now = runtime.clock.now()
    items = [approval_view(a, who.caller, position) for a in runtime.app.open_approvals() if _visible(runtime, who, a)]
    readable = readable_service_ids(runtime, who)
    windows = [
        window_view(w, now, position)
        for w in runtime.app.freeze_calendar().windows.values()
        if w["service_id"] is None or readable is None or w["service_id"] in readable
    ]
    context = {"title": "Approvals", "nav": "approvals", "items": items, "windows": windows, "now": now}
    return render(request, "approvals.html", context)


@router.post("/{approval_id}/decide")
async def decide(request: Request, approval_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Approve or reject, with a reason (the domain checks the group and the requester rule)."""
    form = await request.form()
    _approval(runtime, session.principal, approval_id)
    command = runtime.app.approve if text(form, "decision") == "approve" else runtime.app.reject
    command(approval_id, session.principal.caller, optional(form, "reason"))
    return redirect(request, "/ui/approvals")


@router.post("/stop-the-line")
async def stop_line(request: Request, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Stop the line (administrators), or lift it."""
    form = await request.form()
    if text(form, "action") == "lift":
        require_admin(session.principal, "lift the line")
        runtime.app.lift_the_line(session.user, optional(form, "reason"))
    else:
        require_admin(session.principal, "stop the line")
        runtime.app.stop_the_line(session.user, optional(form, "reason"))
    return redirect(request, "/ui/approvals")
