"""API tokens in the console: any signed-in user lists, creates and revokes their own tokens, so
users who sign in through single sign-on (no password for HTTP Basic) can script too.

The same commands as api/routes/tokens.py; a token keeps the groups its owner had when it was
issued (for single sign-on users, the groups of the ID token at sign-in)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render, wait_for
from api.ui.forms import number, text
from projections.tokens import list_tokens

router = APIRouter(prefix="/ui/tokens", route_class=ConsoleRoute, include_in_schema=False)


def _page(request: Request, runtime: RuntimeDep, user: str, at: int | None, new: str | None = None) -> Response:
    wait_for(runtime, "tokens", at)
    rows = list_tokens(runtime.store, user)
    return render(request, "tokens.html", {"title": "API tokens", "nav": "tokens", "rows": rows, "new": new})


@router.get("")
def tokens(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    return _page(request, runtime, session.user, None)


@router.post("")
async def create(request: Request, runtime: RuntimeDep, session: CheckedDep) -> Response:
    form = await request.form()
    token, _, position = runtime.app.issue_token(
        session.user, text(form, "name"), number(form, "expires_in_days", 30), actor=session.user,
        groups=session.groups,
    )  # fmt: skip
    # Shown on this answer only (never stored in clear), so no redirect here.
    return _page(request, runtime, session.user, position, new=token)


@router.post("/{token_id}/revoke")
async def revoke(request: Request, token_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    outcome = runtime.app.revoke_token(token_id, actor=session.user, is_admin=False)
    request.app.state.authenticator.forget_all()
    wait_for(runtime, "tokens", outcome.position)
    return redirect(request, "/ui/tokens")
