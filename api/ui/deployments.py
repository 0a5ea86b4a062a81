"""The deployment page: machines with live progress, lifecycle actions, and every console at once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from adapters.runtime import Runtime
from api.access import operate_deployment, read_deployment
from api.auth import Principal
from api.ui.allowed import copy_actions, deployment_actions
from api.ui.context import (
    SECURITY_HEADERS,
    CheckedDep,
    ConsoleRoute,
    RuntimeDep,
    SessionDep,
    console_of,
    redirect,
    render,
)
from api.ui.forms import optional, text
from domain.deployment import ACTIVE_STATES, Deployment
from domain.errors import NotFoundError
from projections.audit_queries import AuditFilter

router = APIRouter(prefix="/ui/deployments", route_class=ConsoleRoute, include_in_schema=False)
ACTIVITY = 12
SWAP_STEPS = {"moved": "moved into the stage", "joined": "joined the stage's networks", "on": "powered on"}
COPIES_SCANNED = 500  # the service's newest deployments searched for copies of this one
COMMANDS = {"promote": "promote", "demote": "demote", "undeploy": "undeploy", "retry": "retry_deployment"}


def progress(deployment: Deployment, machine: dict[str, Any]) -> tuple[int, str]:
    """How far one machine is in the deployment's current work (percent, and in words)."""
    state = deployment.state
    if state in ("requested", "provisioning"):
        if machine["state"] == "provisioned":
            return 100, "provisioned"
        return (40, "addresses assigned, cloning") if machine.get("addressing") else (10, "waiting")
    if state in ("promoting", "demoting"):
        moved = machine.get("resource_pool") == deployment.target_pool
        return (100, f"moved to {deployment.target_stage}") if moved else (30, f"moving to {deployment.target_stage}")
    if state == "upgrading" and deployment.upgrade is not None:
        to = deployment.upgrade["to_version"]
        target = deployment.upgrade_target(machine["name"])
        if target is None:
            return 30, f"leaving at v{to}"
        done = machine["state"] == "provisioned" and machine.get("spec") == target
        return (100, f"at v{to}") if done else (30, f"upgrading to v{to}")
    if state == "swapping" and deployment.swap is not None:
        if deployment.swap["role"] == "outgoing":
            return 50, "being replaced (powered off when the copy is in)"
        done = [step for step in SWAP_STEPS if deployment.swap_step_done(step, machine["name"])]
        return 10 + 30 * len(done), SWAP_STEPS[done[-1]] if done else "waiting for the replaced machines to stop"
    if state == "undeploying" and deployment.letting_go:  # a captured deployment's VMs, left running
        return (100, "let go (still running)") if machine["state"] == "released" else (30, "removing tags")
    if state == "undeploying":
        return (100, "destroyed") if machine["state"] == "destroyed" else (30, "destroying")
    if state == "deployed":
        return 100, "deployed"
    return 0, machine["state"]


def related(runtime: Runtime, deployment_id: str | None) -> Deployment | None:
    """A deployment this one names (the one it copies, the one that replaced it), if it still exists."""
    if deployment_id is None:
        return None
    try:
        return runtime.app.deployment(UUID(deployment_id))
    except NotFoundError:
        return None


def _context(runtime: Runtime, who: Principal, deployment_id: UUID) -> dict[str, Any]:
    deployment = read_deployment(runtime, who, deployment_id)
    service = runtime.app.service(deployment.service_id)
    machines = []
    for machine in deployment.machines:
        percent, words = progress(deployment, machine)
        machines.append({**machine, "percent": percent, "progress": words})
    latest = runtime.app.configuration(deployment.configuration_id).version
    actions = deployment_actions(service, deployment, who, latest)
    source = related(runtime, deployment.copy_of["deployment_id"] if deployment.copy_of else None)
    replacer = related(runtime, deployment.replaced_by)
    actions.update(copy_actions(service, deployment, who, source, replacer))
    copies = [
        row for row in runtime.read_models.deployments(str(deployment.service_id), limit=COPIES_SCANNED)
        if (row.get("copied_from") or {}).get("deployment_id") == str(deployment_id) and row["state"] != "undeployed"
    ]  # fmt: skip
    # What happened to it, newest first (the audit read model may trail the aggregate by a moment).
    activity, _ = runtime.audit.page(AuditFilter(deployment_id=str(deployment_id)), None, ACTIVITY)
    return {
        "title": f"{deployment.configuration_name} in {deployment.stage}", "nav": "board", "deployment": deployment,
        "service": service, "machines": machines, "actions": actions,
        "active": deployment.state in ACTIVE_STATES, "activity": activity, "source": source, "replacer": replacer,
        "copies": copies,
    }  # fmt: skip


@router.get("/{deployment_id}")
def deployment_page(request: Request, deployment_id: UUID, runtime: RuntimeDep, session: SessionDep) -> Response:
    return render(request, "deployment.html", _context(runtime, session.principal, deployment_id))


@router.get("/{deployment_id}/live")
def deployment_fragment(
    request: Request, deployment_id: UUID, runtime: RuntimeDep, session: SessionDep,
    min_position: int | None = Query(None, ge=0),
) -> Response:  # fmt: skip
    """State, machines and progress: redrawn whenever the event stream says something moved."""
    return render(request, "fragments/deployment.html", _context(runtime, session.principal, deployment_id))


@router.post("/{deployment_id}/{action}")
async def act(request: Request, deployment_id: UUID, action: str, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Promote, demote, undeploy or retry: the API's permission check, then the same command."""
    if action not in COMMANDS:
        raise NotFoundError(f"no action '{action}' (one of: {', '.join(COMMANDS)})", field="action")
    operate_deployment(runtime, session.principal, deployment_id, action)
    form = await request.form()
    version = text(form, "version")
    command = getattr(runtime.app, COMMANDS[action])
    extra: dict[str, object] = {}
    if action == "undeploy" and "destroy_vms" in form:
        extra["destroy_vms"] = destroy_vms(text(form, "destroy_vms"))
    command(
        deployment_id, actor=session.user, reason=optional(form, "reason"),
        expected_version=int(version) if version.isdigit() else None, **extra,
    )  # fmt: skip
    return redirect(request, f"/ui/deployments/{deployment_id}")


def destroy_vms(value: str) -> object:
    """The button pressed: "Destroy VMs" (true) or "Let go" (false); other text for the domain to refuse."""
    return {"true": True, "false": False}.get(value, value)


@router.get("/{deployment_id}/machines/{name}/screenshot")
def screenshot(request: Request, deployment_id: UUID, name: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The machine's screen, shared by everyone watching it for a few seconds."""
    deployment = read_deployment(runtime, session.principal, deployment_id)
    vm_id = str(deployment.machine(name).get("vm_id"))
    png = console_of(request).screenshots.get(vm_id, lambda: runtime.app.machine_screenshot(deployment_id, name))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/{deployment_id}/machines/{name}/console/open")
def open_html5_console(
    request: Request, deployment_id: UUID, name: str, runtime: RuntimeDep, session: SessionDep
) -> Response:
    """ "Open console": a fresh ticket for this user (recorded as ConsoleOpened), then straight to
    the HTML5 console page it signs in (vCenter's web console, or the simulation's own page)."""
    operate_deployment(runtime, session.principal, deployment_id, "open a console")
    outcome = runtime.app.open_console(deployment_id, name, actor=session.user)
    response = RedirectResponse(outcome.value.html5_url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/{deployment_id}/machines/{name}/console")
def open_console(
    request: Request, deployment_id: UUID, name: str, runtime: RuntimeDep, session: SessionDep
) -> Response:
    """A fresh ticket for this user (recorded as ConsoleOpened), and every way to use it: the HTML5
    console page, the VMware Remote Console link and the WebMKS address."""
    operate_deployment(runtime, session.principal, deployment_id, "open a console")
    outcome = runtime.app.open_console(deployment_id, name, actor=session.user)
    deployment = runtime.app.deployment(deployment_id)
    context = {
        "title": f"Console of {name}", "nav": "board", "deployment": deployment, "machine": deployment.machine(name),
        "ticket": outcome.value, "service": runtime.app.service(deployment.service_id),
    }  # fmt: skip
    return render(request, "console.html", context)


@router.post("/{deployment_id}/machines/{name}/power")
async def power(request: Request, deployment_id: UUID, name: str, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Power on, off or reset: the API's permission check, then the same command (carried out in
    the background and recorded)."""
    form = await request.form()
    action = text(form, "action")
    operate_deployment(runtime, session.principal, deployment_id, f"power {action}")
    runtime.app.power_machine(deployment_id, name, action, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/deployments/{deployment_id}#consoles")
