"""Consoles of a deployment's machines: console tickets (audited), screenshots, power."""

from __future__ import annotations

from urllib.parse import urljoin
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import Field

from api.access import operate_deployment, read_deployment
from api.deps import PrincipalDep, RuntimeDep, set_version
from api.gate import governed
from api.responses import errors
from api.responses.consoles import ConsoleTicket
from api.responses.deployments import Deployment
from api.routing import OneHopRoute
from api.schemas import Governed
from api.views import deployment_view

router = APIRouter(
    route_class=OneHopRoute,
    tags=["consoles"],
    responses=errors(401, 403, 404, 409, 422, 502, 503),
    dependencies=[Depends(governed)],
)
MACHINE = "/api/v1/deployments/{deployment_id}/machines/{machine}"


class PowerRequest(Governed):
    action: str = Field(description="on, off or reset")
    reason: str | None = Field(None, description="Why (kept in the audit log)")


@router.get(MACHINE + "/console", response_model=ConsoleTicket)
def open_console(
    deployment_id: UUID, machine: str, runtime: RuntimeDep, who: PrincipalDep, request: Request, response: Response
) -> ConsoleTicket:
    """A console ticket for one running machine, for you only; recorded as ConsoleOpened."""
    operate_deployment(runtime, who, deployment_id, "open a console")
    outcome = runtime.app.open_console(deployment_id, machine, actor=who.user)
    # A ticket is a credential: never kept by a browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    ticket = outcome.value
    return ConsoleTicket(
        deployment_id=deployment_id, machine=machine, vm_id=ticket.vm_id,
        # The simulated vCenter's console is a page of this server: given as a path, sent absolute.
        html5_url=urljoin(str(request.base_url), ticket.html5_url), webmks_url=ticket.webmks_url,
        vmrc_url=ticket.vmrc_url, expires_at=ticket.expires_at, position=outcome.position,
    )  # fmt: skip


@router.get(
    MACHINE + "/screenshot",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "A PNG of the machine's screen now"}},
)
def screenshot(deployment_id: UUID, machine: str, runtime: RuntimeDep, who: PrincipalDep) -> Response:
    """A PNG of a running machine's screen (readers of the service)."""
    read_deployment(runtime, who, deployment_id)
    png = runtime.app.machine_screenshot(deployment_id, machine)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    MACHINE + "/power", status_code=status.HTTP_202_ACCEPTED, response_model=Deployment, responses=errors(413, 415)
)
def power(
    deployment_id: UUID, machine: str, body: PowerRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Deployment:
    """Power one machine on or off, or reset it; carried out in the background and recorded."""
    operate_deployment(runtime, who, deployment_id, f"power {body.action}")
    outcome = runtime.app.power_machine(deployment_id, machine, body.action, actor=who.user, reason=body.reason)
    set_version(response, outcome.value.version, outcome.position)
    return Deployment.model_validate({**deployment_view(outcome.value), "position": outcome.position})
