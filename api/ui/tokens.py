"""API tokens in the console: any signed-in user lists, creates and revokes their own tokens, so
users who sign in through single sign-on (no password for HTTP Basic) can script too.

The same commands as api/routes/tokens.py; a token keeps the groups its owner had when it was
issued (for single sign-on users, the groups of the ID token at sign-in)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render, wait_for
from api.ui.forms import number, text
from projections.tokens import list_tokens

router = APIRouter(prefix="/ui/tokens", route_class=ConsoleRoute, include_in_schema=False)


@router.get("")
def tokens(
    request: Request, runtime: RuntimeDep, session: SessionDep, at: Annotated[int | None, Query(ge=0)] = None
) -> Response:
    wait_for(runtime, "tokens", at)
    rows = list_tokens(runtime.store, session.user)
    return render(request, "tokens.html", {"title": "API tokens", "nav": "tokens", "rows": rows, "new": None})


@router.post("")
async def create(request: Request, runtime: RuntimeDep, session: CheckedDep) -> Response:
    form = await request.form()
    token, record, position = runtime.app.issue_token(
        session.user, text(form, "name"), number(form, "expires_in_days", 30), actor=session.user,
        groups=session.groups,
    )  # fmt: skip
    # The token is shown on this answer only (it is never stored in clear): no redirect here.
    new = {"token": token, "name": record.name, "expires_at": record.expires_at.isoformat(), "position": position}
    return render(request, "tokens.html", {"title": "API tokens", "nav": "tokens", "rows": None, "new": new})


@router.post("/{token_id}/revoke")
async def revoke(request: Request, token_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    outcome = runtime.app.revoke_token(token_id, actor=session.user, is_admin=False)
    request.app.state.authenticator.forget_all()
    return redirect(request, f"/ui/tokens?at={outcome.position}")
