"""The deployment page: machines with live progress, lifecycle actions, and every console at once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from adapters.runtime import Runtime
from api.access import operate_deployment, read_deployment
from api.auth import Principal
from api.ui.allowed import deployment_actions
from api.ui.consoles import console_port, power_states
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, console_of, redirect, render
from api.ui.forms import optional, text
from domain.deployment import ACTIVE_STATES, Deployment
from domain.errors import NotFoundError, ValidationError
from projections.audit_queries import AuditFilter

router = APIRouter(prefix="/ui/deployments", route_class=ConsoleRoute, include_in_schema=False)
ACTIVITY = 12
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
    if state == "undeploying":
        return (100, "destroyed") if machine["state"] == "destroyed" else (30, "destroying")
    if state == "deployed":
        return 100, "deployed"
    return 0, machine["state"]


def _context(runtime: Runtime, who: Principal, deployment_id: UUID) -> dict[str, Any]:
    deployment = read_deployment(runtime, who, deployment_id)
    service = runtime.app.service(deployment.service_id)
    machines = []
    for machine in deployment.machines:
        percent, words = progress(deployment, machine)
        machines.append({**machine, "percent": percent, "progress": words})
    actions = deployment_actions(service, deployment, who)
    # What happened to it, newest first (the audit read model may trail the aggregate by a moment).
    activity, _ = runtime.audit.page(AuditFilter(deployment_id=str(deployment_id)), None, ACTIVITY)
    return {
        "title": f"{deployment.configuration_name} in {deployment.stage}", "nav": "board", "deployment": deployment,
        "service": service, "machines": machines, "actions": actions,
        "active": deployment.state in ACTIVE_STATES, "consoles": console_port(runtime) is not None,
        "power": power_states(runtime, deployment.machines), "activity": activity,
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
    command(
        deployment_id, actor=session.user, reason=optional(form, "reason"),
        expected_version=int(version) if version.isdigit() else None,
    )  # fmt: skip
    return redirect(request, f"/ui/deployments/{deployment_id}")


def _machine(runtime: Runtime, who: Principal, deployment_id: UUID, name: str, operate: bool) -> dict[str, Any]:
    deployment = read_deployment(runtime, who, deployment_id)
    if operate:
        operate_deployment(runtime, who, deployment_id, "use the console of")
    machine = deployment.machine(name)
    if not machine.get("vm_id"):
        raise NotFoundError(f"machine '{name}' has no VM right now", field="machine")
    return machine


def _port(runtime: Runtime) -> Any:
    port = console_port(runtime)
    if port is None:
        raise NotFoundError("this vCenter driver offers no consoles", field="machine")
    return port


@router.get("/{deployment_id}/machines/{name}/screenshot")
def screenshot(request: Request, deployment_id: UUID, name: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The machine's screen, shared by everyone watching it for a few seconds."""
    machine = _machine(runtime, session.principal, deployment_id, name, operate=False)
    port = _port(runtime)
    png = console_of(request).screenshots.get(machine["vm_id"], lambda: bytes(port.screenshot(machine["vm_id"])))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/{deployment_id}/machines/{name}/{kind}")
def open_console(deployment_id: UUID, name: str, kind: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    """A fresh ticket for this user, then straight to the HTML5 console (or VMware Remote Console)."""
    if kind not in ("console", "vmrc"):
        raise NotFoundError(f"no '{kind}' for a machine (console or vmrc)", field="kind")
    machine = _machine(runtime, session.principal, deployment_id, name, operate=True)
    ticket = _port(runtime).console_ticket(machine["vm_id"])
    return RedirectResponse(ticket.webmks_url if kind == "console" else ticket.vmrc_url, status_code=303)


@router.post("/{deployment_id}/machines/{name}/power")
async def power(request: Request, deployment_id: UUID, name: str, runtime: RuntimeDep, session: CheckedDep) -> Response:
    form = await request.form()
    action = text(form, "action")
    if action not in ("on", "off", "reset"):
        raise ValidationError("action must be on, off or reset", field="action")
    operate_deployment(runtime, session.principal, deployment_id, f"power {action}")
    power_machine = getattr(runtime.app, "power_machine", None)
    if power_machine is None:
        raise NotFoundError("power commands are not available in this version", field="action")
    power_machine(deployment_id, name, action, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/deployments/{deployment_id}#consoles")
