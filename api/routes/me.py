"""Who am I: the caller, their groups and effective roles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import PrincipalDep, RuntimeDep

router = APIRouter(prefix="/api/v1", tags=["me"])


@router.get("/me")
def me(runtime: RuntimeDep, who: PrincipalDep) -> dict[str, Any]:
    """The authenticated user, their directory groups and the roles they hold (administrator or per service)."""
    grants = runtime.read_models.grants_of(who.user, who.groups)
    return {
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
