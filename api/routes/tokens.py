"""API tokens for automation: shown once, stored hashed, expiring, revocable."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, status

from api.access import require_admin
from api.deps import MinPosition, PrincipalDep, RuntimeDep
from api.schemas import TokenCreate
from api.views import token_view
from projections.tokens import list_tokens

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, runtime: RuntimeDep, who: PrincipalDep) -> dict[str, Any]:
    """Create a token for yourself; the `token` field is shown only in this response."""
    token, record, position = runtime.app.issue_token(
        who.user, body.name, body.expires_in_days, actor=who.user, groups=who.groups
    )
    return {**token_view(record), "token": token, "position": position}


@router.get("")
def tokens(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    all: bool = Query(False, description="Every user's tokens (administrators)"),
) -> dict[str, Any]:
    """Your API tokens (administrators: everyone's with `all=true`); never the token itself."""
    if all:
        require_admin(who, "list other users' tokens")
    position = runtime.read_models.wait("tokens", min_position, runtime.settings.read_wait_seconds)
    rows = list_tokens(runtime.store, None if all else who.user)
    items = [{**row, "revoked": row["revoked_at"] is not None} for row in rows]
    return {"items": items, "position": position}


@router.delete("/{token_id}")
def revoke_token(token_id: UUID, runtime: RuntimeDep, who: PrincipalDep, request: Request) -> dict[str, Any]:
    """Revoke one of your tokens (admins: any token)."""
    outcome = runtime.app.revoke_token(token_id, actor=who.user, is_admin=who.is_admin)
    request.app.state.authenticator.forget_all()
    return {**token_view(outcome.value), "position": outcome.position}
