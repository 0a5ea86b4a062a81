"""Services and their stages."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from api.access import manage_service, managing, read_service, readable_service_ids, require_admin
from api.deps import IfMatchDep, MinPosition, PrincipalDep, RuntimeDep, set_version
from api.responses import errors
from api.responses.services import GrantChange, GrantList, GrantRevoked, Service, ServiceList
from api.routing import OneHopRoute
from api.schemas import GrantRequest, ServiceCreate, ServicePatch, StageCreate, StageOrder, StagePatch
from api.views import service_view
from domain.changecontrol import loosened
from domain.errors import PermissionDeniedError
from domain.values import FENCE_KEYS

router = APIRouter(
    route_class=OneHopRoute, prefix="/api/v1/services", tags=["services"], responses=errors(401, 422, 503)
)
# Commands on an existing service: it may be missing, the command may conflict (or race), the body may be too big.
CHANGE = errors(403, 404, 409, 413, 415)
VERSIONED = errors(403, 404, 409, 412, 413, 415)


def _result(response: Response, outcome: Any) -> Service:
    set_version(response, outcome.value.definition_version, outcome.position)
    return Service.model_validate({**service_view(outcome.value), "position": outcome.position})


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Service, responses=errors(403, 409, 413, 415, 502))
def register_service(body: ServiceCreate, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Service:
    """Register a service with its ordered stages (administrators)."""
    require_admin(who, "register services")
    outcome = runtime.app.register_service(
        body.name,
        body.description,
        [s.fields() for s in body.stages],
        actor=who.user,
        reason=body.reason,
    )
    response.headers["Location"] = f"/api/v1/services/{outcome.value.id}"
    return _result(response, outcome)


@router.get("", response_model=ServiceList)
def list_services(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    include_retired: bool = Query(False, description="Also list retired services"),
) -> ServiceList:
    """List the services you hold a role on (administrators: all), from the services read model."""
    position = runtime.read_models.wait("services", min_position, runtime.settings.read_wait_seconds)
    items = runtime.read_models.services(include_retired)
    readable = readable_service_ids(runtime, who)
    if readable is not None:
        items = [s for s in items if s["id"] in readable]
    return ServiceList.model_validate({"items": items, "position": position})


@router.get("/{service_id}", response_model=Service, responses=errors(403, 404))
def get_service(service_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Service:
    """One service, current state."""
    service = read_service(runtime, who, service_id)
    # Read after the aggregate, the head bounds every event it reflects (pass it as min_position).
    position = runtime.app.head()
    set_version(response, service.definition_version, position)
    return Service.model_validate({**service_view(service), "position": position})


@router.patch("/{service_id}", response_model=Service, responses=VERSIONED)
def update_service(
    service_id: UUID,
    body: ServicePatch,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Service:
    """Rename a service and/or change its description (fields left out stay as they are)."""
    outcome = runtime.app.update_service(
        service_id,
        body.description,
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
        name=body.name,
        authorize=managing(who),
    )
    return _result(response, outcome)


@router.delete("/{service_id}", response_model=Service, responses=VERSIONED)
def retire_service(
    service_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    reason: str | None = Query(None, max_length=2048),
) -> Service:
    """Retire a service (refused while it has live deployments). History is kept."""
    outcome = runtime.app.retire_service(
        service_id, actor=who.user, reason=reason, expected_version=if_match, authorize=managing(who)
    )
    return _result(response, outcome)


@router.post(
    "/{service_id}/stages",
    status_code=status.HTTP_201_CREATED,
    response_model=Service,
    responses=VERSIONED | errors(502),
)
def add_stage(
    service_id: UUID,
    body: StageCreate,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Service:
    """Add a stage (at the end, or at `position`)."""
    fields = {"name", "resource_pool", "restricted", "ip_pools", "extra_pools", *FENCE_KEYS}
    stage = body.model_dump(include=fields, exclude_none=True)
    outcome = runtime.app.add_stage(
        service_id,
        stage,
        body.position,
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
        authorize=managing(who),
    )
    return _result(response, outcome)


@router.put("/{service_id}/stages/order", response_model=Service, responses=VERSIONED)
def reorder_stages(
    service_id: UUID,
    body: StageOrder,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Service:
    """Set the order of the stages (the path promotions follow)."""
    outcome = runtime.app.reorder_stages(
        service_id, body.order, actor=who.user, reason=body.reason, expected_version=if_match, authorize=managing(who)
    )
    return _result(response, outcome)


@router.patch("/{service_id}/stages/{stage}", response_model=Service, responses=VERSIONED | errors(502))
def update_stage(
    service_id: UUID,
    stage: str,
    body: StagePatch,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
) -> Service:
    """Rename a stage, map it to another resource pool, change its restricted flag, IP pools or fence settings.
    Its approvals, soak time and quota: owners may only tighten them; loosening is for administrators."""
    service = manage_service(runtime, who, service_id)
    if not who.is_admin:
        loosening = loosened(service.stage(stage), body.fields())
        if loosening is not None:
            field, why = loosening
            raise PermissionDeniedError(
                f"{who.user} may not loosen the change controls of stage '{stage}' ({why}): administrators only",
                field=field,
            )
    outcome = runtime.app.update_stage(
        service_id,
        stage,
        body.fields(),
        actor=who.user,
        reason=body.reason,
        expected_version=if_match,
    )
    return _result(response, outcome)


@router.delete("/{service_id}/stages/{stage}", response_model=Service, responses=VERSIONED)
def remove_stage(
    service_id: UUID,
    stage: str,
    runtime: RuntimeDep,
    who: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    reason: str | None = Query(None, max_length=2048),
) -> Service:
    """Remove a stage that holds no live deployment."""
    outcome = runtime.app.remove_stage(
        service_id, stage, actor=who.user, reason=reason, expected_version=if_match, authorize=managing(who)
    )
    return _result(response, outcome)


@router.post("/{service_id}/grants", status_code=status.HTTP_201_CREATED, response_model=GrantChange, responses=CHANGE)
def grant(service_id: UUID, body: GrantRequest, runtime: RuntimeDep, who: PrincipalDep) -> GrantChange:
    """Grant a role on the service to a directory group (DN) or user (uid); stage-operator needs `stage`."""
    manage_service(runtime, who, service_id)
    outcome = runtime.app.grant_role(
        service_id, body.role, body.user, body.group, body.stage, actor=who.user, reason=body.reason
    )
    return GrantChange.model_validate({**outcome.value, "position": outcome.position})


@router.get("/{service_id}/grants", response_model=GrantList, responses=errors(403, 404))
def list_grants(service_id: UUID, runtime: RuntimeDep, who: PrincipalDep) -> GrantList:
    """Who holds which role on the service."""
    service = read_service(runtime, who, service_id)
    grants = sorted(service.grants.values(), key=lambda g: (g["role"], g["stage"] or "", g["id"]))
    return GrantList.model_validate({"items": grants})


@router.delete("/{service_id}/grants/{grant_id}", response_model=GrantRevoked, responses=CHANGE)
def revoke(
    service_id: UUID,
    grant_id: str,
    runtime: RuntimeDep,
    who: PrincipalDep,
    reason: str | None = Query(None, max_length=2048),
) -> GrantRevoked:
    """Revoke a grant."""
    manage_service(runtime, who, service_id)
    outcome = runtime.app.revoke_grant(service_id, grant_id, actor=who.user, reason=reason)
    return GrantRevoked.model_validate({**outcome.value, "revoked": True, "position": outcome.position})
