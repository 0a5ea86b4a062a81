"""The shared template catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.access import require_admin
from api.deps import PrincipalDep, RuntimeDep
from api.schemas import TemplateImport

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


@router.get("")
def list_templates(runtime: RuntimeDep, _: PrincipalDep) -> dict[str, Any]:
    """The catalogue: templates every service may use."""
    catalogue = runtime.app.catalogue()
    items = sorted(catalogue.templates.values(), key=lambda t: t["name"].casefold())
    return {"items": items}


@router.post("/import")
def import_templates(body: TemplateImport, runtime: RuntimeDep, who: PrincipalDep) -> dict[str, Any]:
    """Import templates from vCenter by name (`names`) or all of them (`all: true`); administrators."""
    require_admin(who, "import templates")
    outcome = runtime.app.import_templates(body.names, body.all, actor=who.user, reason=body.reason)
    return {"imported": outcome.value, "position": outcome.position}
