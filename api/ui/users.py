"""Local users (administrators): the list with groups and state, create, unlock, disable, enable.

Each form runs the same command as the API route (api/routes/users.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import require_admin
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render, wait_for
from api.ui.forms import optional, text
from domain.errors import NotFoundError, PermissionDeniedError
from domain.local_users import group_dn
from projections.users import list_users

router = APIRouter(prefix="/ui/users", route_class=ConsoleRoute, include_in_schema=False)


@router.get("")
def users(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    require_admin(session.principal, "manage local users")
    wait_for(runtime, "users", None)
    now = runtime.app.clock.now().isoformat()
    rows = [
        {
            **row,
            "locked": bool(row["locked_until"] and row["locked_until"] > now),
            "dns": list(map(group_dn, row["groups"])),
        }
        for row in list_users(runtime.store)
    ]
    return render(request, "users.html", {"title": "Users", "nav": "users", "rows": rows})


@router.post("")
async def create(request: Request, runtime: RuntimeDep, session: CheckedDep) -> Response:
    require_admin(session.principal, "create local users")
    form = await request.form()
    groups = [g.strip() for g in text(form, "groups").split(",") if g.strip()]
    runtime.app.create_user(
        text(form, "username"), text(form, "password"), groups, optional(form, "display_name"),
        actor=session.user, reason=optional(form, "reason"),
    )  # fmt: skip
    return redirect(request, "/ui/users")


@router.post("/{username}/{action}")
async def act(request: Request, username: str, action: str, runtime: RuntimeDep, session: CheckedDep) -> Response:
    require_admin(session.principal, f"{action} local users")
    form = await request.form()
    reason = optional(form, "reason")
    if action == "unlock":
        runtime.app.unlock_user(username, session.user, reason=reason)
    elif action in ("disable", "enable"):
        if action == "disable" and username == session.user:
            raise PermissionDeniedError("you may not disable your own account")
        runtime.app.change_user(username, session.user, disabled=action == "disable", reason=reason)
        request.app.state.authenticator.forget_all()
    else:
        raise NotFoundError(f"no user action {action!r}")
    return redirect(request, "/ui/users")
