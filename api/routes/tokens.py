"""API tokens for automation: shown once, stored hashed, expiring, revocable."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Request, status

from api.access import require_admin
from api.deps import MinPosition, PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.system import NewToken, Token, TokenList
from api.routing import OneHopRoute
from api.schemas import TokenCreate
from api.views import token_view
from projections.tokens import list_tokens

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1/tokens", tags=["tokens"], responses=errors(401, 422, 503))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewToken, responses=errors(409, 413, 415))
def create_token(body: TokenCreate, runtime: RuntimeDep, who: PrincipalDep) -> NewToken:
    """Create a token for yourself; the `token` field is shown only in this response."""
    token, record, position = runtime.app.issue_token(
        who.user, body.name, body.expires_in_days, actor=who.user, groups=who.groups
    )
    return NewToken.model_validate({**token_view(record), "token": token, "position": position})


@router.get("", response_model=TokenList, responses=errors(403))
def tokens(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    all: bool = Query(False, description="Every user's tokens (administrators)"),
) -> TokenList:
    """Your API tokens (administrators: everyone's with `all=true`); never the token itself."""
    if all:
        require_admin(who, "list other users' tokens")
    position = runtime.read_models.wait("tokens", min_position, runtime.settings.read_wait_seconds)
    rows = list_tokens(runtime.store, None if all else who.user)
    items = [{**row, "revoked": row["revoked_at"] is not None} for row in rows]
    return TokenList.model_validate({"items": items, "position": position})


@router.delete("/{token_id}", response_model=Token, responses=errors(403, 404, 409))
def revoke_token(token_id: UUID, runtime: RuntimeDep, who: PrincipalDep, request: Request) -> Token:
    """Revoke one of your tokens (admins: any token)."""
    outcome = runtime.app.revoke_token(token_id, actor=who.user, is_admin=who.is_admin)
    request.app.state.authenticator.forget_all()
    return Token.model_validate({**token_view(outcome.value), "position": outcome.position})
