"""The shared template catalogue."""

from __future__ import annotations

from fastapi import APIRouter

from api.access import require_admin
from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.system import TemplateList, TemplatesImported
from api.routing import OneHopRoute
from api.schemas import TemplateImport

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1/templates", tags=["templates"], responses=errors(401, 503))


@router.get("", response_model=TemplateList)
def list_templates(runtime: RuntimeDep, _: PrincipalDep) -> TemplateList:
    """The catalogue: templates every service may use."""
    catalogue = runtime.app.catalogue()
    items = sorted(catalogue.templates.values(), key=lambda t: t["name"].casefold())
    return TemplateList.model_validate({"items": items})


@router.post("/import", response_model=TemplatesImported, responses=errors(403, 409, 413, 415, 422, 502))
def import_templates(body: TemplateImport, runtime: RuntimeDep, who: PrincipalDep) -> TemplatesImported:
    """Import templates from vCenter by name (`names`) or all of them (`all: true`); administrators."""
    require_admin(who, "import templates")
    outcome = runtime.app.import_templates(body.names, body.all, actor=who.user, reason=body.reason)
    return TemplatesImported.model_validate({"imported": outcome.value, "position": outcome.position})
