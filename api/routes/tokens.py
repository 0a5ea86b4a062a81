"""API tokens for automation: shown once, stored hashed, expiring, revocable."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, status

from api.deps import PrincipalDep, RuntimeDep
from api.schemas import TokenCreate
from api.views import token_view

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, runtime: RuntimeDep, who: PrincipalDep) -> dict[str, Any]:
    """Create a token for yourself; the `token` field is shown only in this response."""
    token, record, position = runtime.app.issue_token(
        who.user, body.name, body.expires_in_days, actor=who.user, groups=who.groups
    )
    return {**token_view(record), "token": token, "position": position}


@router.delete("/{token_id}")
def revoke_token(token_id: UUID, runtime: RuntimeDep, who: PrincipalDep, request: Request) -> dict[str, Any]:
    """Revoke one of your tokens (admins: any token)."""
    outcome = runtime.app.revoke_token(token_id, actor=who.user, is_admin=who.is_admin)
    request.app.state.authenticator.forget_all()
    return {**token_view(outcome.value), "position": outcome.position}
