"""The service page: stages (pool, restricted, IP pools), configurations, deployments, grants."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.access import manage_service, read_service, require_admin
from api.ui.allowed import may_capture, may_manage, may_operate
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, refused, render, wait_for
from api.ui.forms import FORM, checked, errors_for, number, optional, text
from api.views_governance import window_view
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.permissions import ROLES

router = APIRouter(prefix="/ui/services", route_class=ConsoleRoute, include_in_schema=False)
NEW_STAGE_ROWS = 4


def service_windows(runtime: Any, service_id: UUID) -> list[dict[str, Any]]:
    """The freeze windows that apply to the service: its own, its stages' and the global ones."""
    now, position = runtime.clock.now(), runtime.app.head()
    return [
        window_view(w, now, position)
        for w in runtime.app.freeze_calendar().windows.values()
        if w["service_id"] in (None, str(service_id))
    ]


def service_page_for(
    request: Request, runtime: Any, session: Any, service_id: UUID, at: int | None = None,
    errors: dict[str, Any] | None = None, status: int = 200, capture: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    who = session.principal
    service = read_service(runtime, who, service_id)
    wait_for(runtime, "deployments", at)
    position = wait_for(runtime, "configurations", at)
    deployments = [d for d in runtime.read_models.deployments(str(service_id), limit=200) if d["state"] != "undeployed"]
    context = {
        "title": service.name, "nav": "board", "service": service, "position": position,
        "configurations": runtime.read_models.configurations(str(service_id)),
        "deployments": deployments,
        "grants": sorted(service.grants.values(), key=lambda g: (g["role"], g["stage"] or "", g["id"])),
        "manage": may_manage(service, who),
        "operates": {s["name"]: may_operate(service, who, s["name"]) for s in service.stages},
        "capture_stages": [s["name"] for s in service.stages if may_capture(service, who, s["name"])],
        "capture": capture or {},
        "live": {s["name"]: len(service.live_deployments(s["name"])) for s in service.stages},
        "roles": ROLES, "errors": errors or {}, "values": (errors or {}).get("values", {}),
        "windows": service_windows(runtime, service_id),
    }  # fmt: skip
    return render(request, "service.html", context, status)


def _failed(request: Request, runtime: Any, session: Any, service_id: UUID, form_id: str, error: Exception,
            fields: dict[str, str], values: dict[str, Any]) -> Response:  # fmt: skip
    assert isinstance(error, ValidationError | ConflictError | NotFoundError)
    refused(request, error)
    mapped = errors_for(ValidationError(error.message, field=error.field), fields=fields)
    status = 422 if isinstance(error, ValidationError) else 409 if isinstance(error, ConflictError) else 404
    bundle = {"form": form_id, "fields": mapped, "values": values}
    return service_page_for(request, runtime, session, service_id, errors=bundle, status=status)


@router.get("/new")
def new_service(request: Request, session: SessionDep) -> Response:
    require_admin(session.principal, "register services")
    return render(request, "service_new.html", {"title": "New service", "nav": "board", "rows": NEW_STAGE_ROWS,
                                                "errors": {}, "values": {}})  # fmt: skip


@router.post("")
async def register(request: Request, runtime: RuntimeDep, session: CheckedDep) -> Response:
    require_admin(session.principal, "register services")
    form = await request.form()
    stages = []
    for i in range(NEW_STAGE_ROWS):
        name, pool = text(form, f"stages[{i}].name"), text(form, f"stages[{i}].resource_pool")
        if name or pool:
            stages.append({"name": name, "resource_pool": pool, "restricted": checked(form, f"stages[{i}].restricted")})
    try:
        outcome = runtime.app.register_service(
            text(form, "name"), text(form, "description"), stages, actor=session.user, reason=optional(form, "reason")
        )
    except (ValidationError, ConflictError) as error:
        refused(request, error)
        values = {k: v for k, v in form.items() if k != "csrf"}
        return render(
            request, "service_new.html",
            {"title": "New service", "nav": "board", "rows": NEW_STAGE_ROWS, "values": values,
             "errors": errors_for(ValidationError(error.message, field=error.field))},
            422 if isinstance(error, ValidationError) else 409,
        )  # fmt: skip
    return redirect(request, f"/ui/services/{outcome.value.id}?at={outcome.position}")


@router.get("/{service_id}")
def service_page(
    request: Request, service_id: UUID, runtime: RuntimeDep, session: SessionDep, at: int | None = Query(None, ge=0)
) -> Response:
    return service_page_for(request, runtime, session, service_id, at)


@router.post("/{service_id}/description")
async def describe(request: Request, service_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    manage_service(runtime, session.principal, service_id)
    form = await request.form()
    try:
        outcome = runtime.app.update_service(service_id, text(form, "description"), actor=session.user,
                                             reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        return _failed(request, runtime, session, service_id, "description", error, {}, dict(form))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}")


@router.post("/{service_id}/stages")
async def add_stage(request: Request, service_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    manage_service(runtime, session.principal, service_id)
    form = await request.form()
    stage = {"name": text(form, "name"), "resource_pool": text(form, "resource_pool"),
             "restricted": checked(form, "restricted")}  # fmt: skip
    try:
        outcome = runtime.app.add_stage(service_id, stage, number(form, "position"), actor=session.user,
                                        reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        fields = {"stage.name": "name", "stage.resource_pool": "resource_pool", "stage": FORM}
        return _failed(request, runtime, session, service_id, "add-stage", error, fields, dict(form))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#stages")


@router.post("/{service_id}/stages/{stage}")
async def update_stage(
    request: Request, service_id: UUID, stage: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    """Rename, map to another pool, or change the restricted flag: only what the form changed."""
    service = manage_service(runtime, session.principal, service_id)
    form = await request.form()
    current = service.stage(stage)
    changes: dict[str, Any] = {}
    if text(form, "name") and text(form, "name") != current["name"]:
        changes["name"] = text(form, "name")
    if text(form, "resource_pool") and text(form, "resource_pool") != current["resource_pool"]:
        changes["resource_pool"] = text(form, "resource_pool")
    if checked(form, "restricted") != bool(current.get("restricted")):
        changes["restricted"] = checked(form, "restricted")
    if "extra_pools" in form:  # placement's other pools: one path a line
        extra = [line.strip() for line in text(form, "extra_pools").splitlines() if line.strip()]
        if extra != list(current.get("extra_pools", [])):
            changes["extra_pools"] = extra
    if not changes:
        return redirect(request, f"/ui/services/{service_id}#stages")
    try:
        outcome = runtime.app.update_stage(service_id, stage, changes, actor=session.user,
                                           reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        fields = {"extra_pools": "extra_pools"}
        return _failed(request, runtime, session, service_id, f"stage-{current['name']}", error, fields, dict(form))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#stages")


@router.post("/{service_id}/stages/{stage}/move")
async def move_stage(
    request: Request, service_id: UUID, stage: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    """Move a stage one place earlier or later in the lifecycle."""
    service = manage_service(runtime, session.principal, service_id)
    form = await request.form()
    names = [s["name"] for s in service.stages]
    index = service.stage_index(stage)
    other = index + (-1 if text(form, "direction") == "up" else 1)
    if not 0 <= other < len(names):
        raise ValidationError(f"'{names[index]}' is already at that end of the lifecycle", field="direction")
    names[index], names[other] = names[other], names[index]
    outcome = runtime.app.reorder_stages(service_id, names, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#stages")


@router.post("/{service_id}/stages/{stage}/remove")
async def remove_stage(
    request: Request, service_id: UUID, stage: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    manage_service(runtime, session.principal, service_id)
    form = await request.form()
    outcome = runtime.app.remove_stage(service_id, stage, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#stages")


@router.post("/{service_id}/stages/{stage}/fencing")
async def set_fencing(
    request: Request, service_id: UUID, stage: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    """Fenced networks of a stage: switch, VLAN range, gateway template, external network, policy."""
    service = manage_service(runtime, session.principal, service_id)
    form = await request.form()
    vlans = {"first": number(form, "vlan_first"), "last": number(form, "vlan_last")}
    changes: dict[str, Any] = {
        "dvswitch": optional(form, "dvswitch"),
        "vlan_range": vlans if any(v is not None for v in vlans.values()) else None,
        "fence_gateway_template": optional(form, "fence_gateway_template"),
        "external_network": optional(form, "external_network"),
        "fence": text(form, "fence", "optional"),
        "copy_mode": text(form, "copy_mode", "full"),
    }
    name = service.stage(stage)["name"]
    try:
        outcome = runtime.app.update_stage(service_id, stage, changes, actor=session.user,
                                           reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        fields = {"vlan_range.first": "vlan_first", "vlan_range.last": "vlan_last", "vlan_range": "vlan_first"}
        return _failed(request, runtime, session, service_id, f"fence-{name}", error, fields, dict(form))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#stages")


@router.post("/{service_id}/stages/{stage}/ip-pools")
async def add_ip_pool(
    request: Request, service_id: UUID, stage: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    service = manage_service(runtime, session.principal, service_id)
    form = await request.form()
    pools = list(service.stage(stage).get("ip_pools") or [])
    pool: dict[str, Any] = {"cidr": text(form, "cidr"), "gateway": text(form, "gateway"),
                            "dns": [d.strip() for d in text(form, "dns").split(",") if d.strip()]}  # fmt: skip
    for key in ("first", "last"):
        if text(form, key):
            pool[key] = text(form, key)
    index = len(pools)
    try:
        outcome = runtime.app.update_stage(service_id, stage, {"ip_pools": [*pools, pool]}, actor=session.user,
                                           reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        fields = {f"ip_pools[{index}].{k}": k for k in ("cidr", "gateway", "dns", "first", "last")}
        name = service.stage(stage)["name"]
        return _failed(request, runtime, session, service_id, f"pool-{name}", error, fields, dict(form))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#stages")


@router.post("/{service_id}/stages/{stage}/ip-pools/{index}/remove")
async def remove_ip_pool(
    request: Request, service_id: UUID, stage: str, index: int, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    service = manage_service(runtime, session.principal, service_id)
    form = await request.form()
    pools = list(service.stage(stage).get("ip_pools") or [])
    if not 0 <= index < len(pools):
        raise NotFoundError(f"stage '{stage}' has no IP pool number {index + 1}", field="index")
    del pools[index]
    outcome = runtime.app.update_stage(service_id, stage, {"ip_pools": pools}, actor=session.user,
                                       reason=optional(form, "reason"))  # fmt: skip
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#stages")


@router.post("/{service_id}/grants")
async def grant(request: Request, service_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    manage_service(runtime, session.principal, service_id)
    form = await request.form()
    member = text(form, "member")
    kind = text(form, "kind", "user")
    try:
        outcome = runtime.app.grant_role(
            service_id, text(form, "role"), member if kind == "user" else None, member if kind == "group" else None,
            optional(form, "stage"), actor=session.user, reason=optional(form, "reason"),
        )  # fmt: skip
    except (ValidationError, ConflictError) as error:
        fields = {"user": "member", "group": "member"}
        return _failed(request, runtime, session, service_id, "grant", error, fields, dict(form))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#grants")


@router.post("/{service_id}/grants/{grant_id}/revoke")
async def revoke(
    request: Request, service_id: UUID, grant_id: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    manage_service(runtime, session.principal, service_id)
    form = await request.form()
    outcome = runtime.app.revoke_grant(service_id, grant_id, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/services/{service_id}?at={outcome.position}#grants")


@router.post("/{service_id}/configurations")
async def create_configuration(
    request: Request, service_id: UUID, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    manage_service(runtime, session.principal, service_id)
    form = await request.form()
    networks = [{"name": n.strip()} for n in text(form, "networks").split(",") if n.strip()]
    try:
        outcome = runtime.app.create_configuration(
            service_id, text(form, "name"), text(form, "description"), networks, [], actor=session.user,
            reason=optional(form, "reason"),
        )  # fmt: skip
    except (ValidationError, ConflictError) as error:
        fields = {"networks": "networks"}
        return _failed(request, runtime, session, service_id, "configuration", error, fields, dict(form))
    return redirect(request, f"/ui/configurations/{outcome.value.id}?at={outcome.position}")
