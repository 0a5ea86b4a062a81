"""API tokens for automation: shown once, stored hashed, expiring, revocable."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, status

from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.system import NewToken, Token
from api.schemas import TokenCreate
from api.views import token_view

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=errors(401, 422, 503))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewToken, responses=errors(409, 413, 415))
def create_token(body: TokenCreate, runtime: RuntimeDep, who: PrincipalDep) -> NewToken:
    """Create a token for yourself; the `token` field is shown only in this response."""
    token, record, position = runtime.app.issue_token(
        who.user, body.name, body.expires_in_days, actor=who.user, groups=who.groups
    )
    return NewToken.model_validate({**token_view(record), "token": token, "position": position})


@router.delete("/{token_id}", response_model=Token, responses=errors(403, 404, 409))
def revoke_token(token_id: UUID, runtime: RuntimeDep, who: PrincipalDep, request: Request) -> Token:
    """Revoke one of your tokens (admins: any token)."""
    outcome = runtime.app.revoke_token(token_id, actor=who.user, is_admin=who.is_admin)
    request.app.state.authenticator.forget_all()
    return Token.model_validate({**token_view(outcome.value), "position": outcome.position})
