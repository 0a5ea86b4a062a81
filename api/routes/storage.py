"""The linked-clone dependency tree, what depends on a template or a deployment, and the
catalogue removal that refuses while anything does."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query

from adapters.runtime import Runtime
from api.access import read_deployment, read_service, readable_service_ids, require_admin
from api.auth import Principal
from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.media import Dependants, StorageTree, TemplateRemoved
from api.routes.media import live_deployments
from api.routing import OneHopRoute
from domain.dependants import Node
from domain.text import MAX_REASON

router = APIRouter(route_class=OneHopRoute, tags=["storage"], responses=errors(401, 503))


def visible_nodes(nodes: list[Node], readable: set[str] | None) -> tuple[list[Node], int]:
    """The nodes the caller may see (templates always; deployments of readable services), and
    how many were left out, their dependants included."""
    kept: list[Node] = []
    hidden = 0
    for node in nodes:
        if node.kind == "deployment" and readable is not None and node.service_id not in readable:
            hidden += len(node.flatten())
            continue
        node.children, below = visible_nodes(node.children, readable)
        hidden += below
        kept.append(node)
    return kept, hidden


def _readable(runtime: Runtime, who: Principal) -> set[str] | None:
    return readable_service_ids(runtime, who)


@router.get("/api/v1/storage/tree", response_model=StorageTree, responses=errors(403, 404, 422))
def storage_tree(
    runtime: RuntimeDep,
    who: PrincipalDep,
    service: UUID | None = Query(None, description="Only this service's deployments (templates are shared)"),
) -> StorageTree:
    """Which deployments' disks hang off which template snapshot or deployment, with sizes."""
    if service is not None:
        read_service(runtime, who, service)
    position = runtime.app.head()
    ids = live_deployments(runtime, str(service) if service is not None else None)
    roots = runtime.app.storage_tree(ids)
    if service is not None:  # deployments created since the read model moved may be of any service
        roots, _ = visible_nodes(roots, {str(service)})
    roots, hidden = visible_nodes(roots, _readable(runtime, who))
    rows = [row for root in roots for row in root.flatten()]
    return StorageTree.model_validate(
        {"roots": [r.to_dict() for r in roots], "rows": rows, "hidden": hidden, "position": position}
    )


def _dependants(node: Node, readable: set[str] | None) -> Dependants:
    kept, hidden = visible_nodes([node], readable)
    shown = kept[0]
    return Dependants.model_validate({"node": shown.to_dict(), "dependants": shown.flatten()[1:], "hidden": hidden})


@router.get("/api/v1/templates/{name}/dependants", response_model=Dependants, responses=errors(404, 422))
def template_dependants(name: str, runtime: RuntimeDep, who: PrincipalDep) -> Dependants:
    """What removing the template from the catalogue would strand: the deployments whose linked
    clones read through its snapshot, and their linked copies."""
    node = runtime.app.template_dependants(name, live_deployments(runtime))
    return _dependants(node, _readable(runtime, who))


@router.delete("/api/v1/templates/{name}", response_model=TemplateRemoved, responses=errors(403, 404, 409, 422))
def remove_template(
    name: str,
    runtime: RuntimeDep,
    who: PrincipalDep,
    reason: str | None = Query(None, max_length=MAX_REASON),
) -> TemplateRemoved:
    """Take a template out of the catalogue (vCenter keeps it); refused (409, naming them) while
    linked clones depend on it. Administrators."""
    require_admin(who, "remove templates")
    outcome = runtime.app.remove_template(name, live_deployments(runtime), actor=who.user, reason=reason)
    return TemplateRemoved.model_validate({"name": outcome.value["name"], "position": outcome.position})


@router.get(
    "/api/v1/deployments/{deployment_id}/dependants", response_model=Dependants, responses=errors(403, 404, 422)
)
def deployment_dependants(deployment_id: UUID, runtime: RuntimeDep, who: PrincipalDep) -> Dependants:
    """The live linked copies whose disks read through snapshots of this deployment's VMs (and theirs)."""
    read_deployment(runtime, who, deployment_id)
    return _dependants(runtime.app.deployment_dependants(deployment_id), _readable(runtime, who))
