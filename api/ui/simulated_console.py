"""The simulated vCenter's web console: the page "Open console" leads to when there is no vCenter.

With a real vCenter, "Open console" goes to vCenter's own /ui/webconsole.html, signed in by the
clone ticket in its address. The simulated driver's tickets lead here instead, with the same
query (vmId, vmName, serverGuid, host, sessionTicket): the ticket is the only credential, as on
vCenter, so no Stagekeeper session is needed. The page says plainly that it is a simulation and
shows the picture the simulated driver draws of the machine (name, state, address), refreshed
while it is open; no keyboard or mouse reaches anything.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from api.ui.context import SECURITY_HEADERS, ConsoleRoute, RuntimeDep, console_of, render
from domain.errors import NotFoundError, PermissionDeniedError
from domain.ports import VmInfo

router = APIRouter(prefix="/ui/simulated-vcenter", route_class=ConsoleRoute, include_in_schema=False)
TICKET = Query(alias="sessionTicket", max_length=200)
VM = Query(alias="vmId", max_length=200)


def _simulated(runtime: Runtime) -> SimulatedVCenter:
    if not isinstance(runtime.vcenter, SimulatedVCenter):
        raise NotFoundError("this Stagekeeper works with a real vCenter: consoles open on vCenter's own page")
    return runtime.vcenter


def _vm(runtime: Runtime, vm_id: str, ticket: str) -> VmInfo:
    vm = _simulated(runtime).web_console(vm_id, ticket)
    if vm is None:
        raise PermissionDeniedError(
            "this console ticket is not valid for this machine, or it has expired: "
            "open the console again from the deployment's page"
        )
    return vm


@router.get("/webconsole.html")
def web_console(request: Request, runtime: RuntimeDep, vm_id: str = VM, ticket: str = TICKET) -> Response:
    vm = _vm(runtime, vm_id, ticket)
    simulated = _simulated(runtime)
    power = simulated.power_state(vm_id)
    context = {"title": f"Simulated console of {vm.name}", "vm": vm, "power": power, "ticket": ticket}
    return render(request, "simulated_console.html", context)


@router.get("/screen.png")
def screen(request: Request, runtime: RuntimeDep, vm_id: str = VM, ticket: str = TICKET) -> Response:
    _vm(runtime, vm_id, ticket)
    simulated = _simulated(runtime)
    png = console_of(request).screenshots.get(vm_id, lambda: simulated.screenshot(vm_id))
    return Response(png, media_type="image/png", headers={**SECURITY_HEADERS})
