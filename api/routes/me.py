"""Who am I: the caller, their groups and effective roles."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.system import Me
from api.routing import OneHopRoute

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["me"], responses=errors(401, 503))


@router.get("/me", response_model=Me)
def me(runtime: RuntimeDep, who: PrincipalDep) -> Me:
    """The authenticated user, their directory groups and the roles they hold (administrator or per service)."""
    grants = runtime.read_models.grants_of(who.user, who.groups)
    return Me.model_validate(
        {
            "user": who.user,
            "display_name": who.display_name,
            "authenticated_by": who.via,
            "groups": sorted(who.groups),
            "admin": who.is_admin,
            "roles": [
                {
                    "service_id": g["service_id"],
                    "role": g["role"],
                    "stage": g["stage"],
                    "through": f"group {g['member_group']}" if g["member_group"] else "user",
                }
                for g in grants
            ],
        }
    )
