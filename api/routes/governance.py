"""Governance: approval requests and decisions, stop the line, freeze windows."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import Field

from adapters.runtime import Runtime
from api.access import manage_service, readable_service_ids, require_admin
from api.auth import Principal
from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.governance import Approval, ApprovalList, FreezeWindow, FreezeWindowList, StopLine
from api.routing import OneHopRoute
from api.schemas import Body as BodyModel
from api.schemas import Reason
from api.views_governance import approval_view, window_view
from domain import approval as approvals
from domain.approval import Approval as ApprovalAggregate
from domain.changecontrol import may_change_window
from domain.errors import PermissionDeniedError, ValidationError
from domain.permissions import can_read

router = APIRouter(route_class=OneHopRoute, tags=["governance"], responses=errors(401, 403, 404, 422, 503))
STATE_FILTERS = {"pending": approvals.AWAITING, approvals.AWAITING: approvals.AWAITING,
                 approvals.APPROVED: approvals.APPROVED}  # fmt: skip


def _visible(runtime: Runtime, who: Principal, approval: ApprovalAggregate) -> bool:
    if who.is_admin or approval.may_approve(who.caller):
        return True
    service = runtime.app.service(approval.service_id)
    return can_read(list(service.grants.values()), who.caller)


def _approval(runtime: Runtime, who: Principal, approval_id: UUID) -> ApprovalAggregate:
    approval = runtime.app.approval(approval_id)
    if not _visible(runtime, who, approval):
        raise PermissionDeniedError(f"{who.user} holds no role on approval {approval_id}")
    return approval


@router.get("/api/v1/approvals", response_model=ApprovalList)
def list_approvals(
    runtime: RuntimeDep,
    who: PrincipalDep,
    state: str | None = Query(None, description="pending (= awaiting-approval) or approved; default both"),
    service: UUID | None = Query(None, description="Service id"),
    limit: int = Query(200, ge=1, le=1000),
) -> ApprovalList:
    """Open approval requests you may decide on or whose service you can read, oldest first."""
    if state is not None and state not in STATE_FILTERS:
        raise ValidationError(f"state must be one of {', '.join(STATE_FILTERS)}", field="state")
    position = runtime.app.head()
    items = []
    for approval in runtime.app.open_approvals():
        if state is not None and approval.state != STATE_FILTERS[state]:
            continue
        if service is not None and approval.service_id != service:
            continue
        if _visible(runtime, who, approval):
            items.append(approval_view(approval, who.caller, position))
        if len(items) >= limit:
            break
    return ApprovalList.model_validate({"items": items, "position": position})


@router.get("/api/v1/approvals/{approval_id}", response_model=Approval)
def get_approval(approval_id: UUID, runtime: RuntimeDep, who: PrincipalDep) -> Approval:
    """One approval request, open or closed."""
    approval = _approval(runtime, who, approval_id)
    return Approval.model_validate(approval_view(approval, who.caller, runtime.app.head()))


def _decide(action: str) -> None:
    def endpoint(
        approval_id: UUID, runtime: RuntimeDep, who: PrincipalDep, body: Reason | None = Body(None)
    ) -> Approval:
        _approval(runtime, who, approval_id)
        command = runtime.app.approve if action == "approve" else runtime.app.reject
        outcome = command(approval_id, who.caller, body.reason if body else None)
        return Approval.model_validate(approval_view(outcome.value, who.caller, outcome.position))

    endpoint.__name__ = f"{action}_approval"
    endpoint.__doc__ = (
        "Agree to the request (a member of its group; never its requester unless the stage allows it)."
        if action == "approve"
        else "Refuse the request: it is closed and never carried out."
    )
    router.add_api_route(
        f"/api/v1/approvals/{{approval_id}}/{action}",
        endpoint,
        methods=["POST"],
        name=f"{action}_approval",
        response_model=Approval,
        responses=errors(409, 413, 415),
    )


_decide("approve")
_decide("reject")


# -- stop the line ---------------------------------------------------------------------------------
def _line(runtime: Runtime, position: int) -> StopLine:
    line = runtime.app.line()
    return StopLine.model_validate(
        {"on": line.on, "reason": line.reason, "by": line.by, "since": line.since, "position": position}
    )


@router.get("/api/v1/stop-the-line", response_model=StopLine)
def get_stop_line(runtime: RuntimeDep, who: PrincipalDep) -> StopLine:
    """Whether the line is stopped, by whom and why."""
    return _line(runtime, runtime.app.head())


class StopRequest(BodyModel):
    reason: str = Field(description="Why (given with every refusal while the line is stopped)")


@router.post("/api/v1/stop-the-line", response_model=StopLine, responses=errors(409, 413, 415))
def stop_the_line(body: StopRequest, runtime: RuntimeDep, who: PrincipalDep) -> StopLine:
    """Refuse every lifecycle command everywhere until lifted (administrators)."""
    require_admin(who, "stop the line")
    return _line(runtime, runtime.app.stop_the_line(who.user, body.reason).position)


@router.delete("/api/v1/stop-the-line", response_model=StopLine, responses=errors(409, 413, 415))
def lift_the_line(runtime: RuntimeDep, who: PrincipalDep, body: Reason | None = Body(None)) -> StopLine:
    """Let lifecycle commands through again (administrators)."""
    require_admin(who, "lift the line")
    return _line(runtime, runtime.app.lift_the_line(who.user, body.reason if body else None).position)


# -- freeze windows ----------------------------------------------------------------------------
class WindowIn(BodyModel):
    name: str
    service_id: str | None = Field(None, description="Absent: every service (administrators only)")
    stage: str | None = Field(None, description="Absent: every stage of the service")
    start: str = Field(description="ISO 8601; without an offset it is wall-clock time in `timezone`")
    end: str
    timezone: str = Field("UTC", description="IANA time zone, e.g. Europe/Paris")
    recurrence: str | None = Field(None, description='"weekly": the window repeats every week (wall-clock time)')
    until: str | None = Field(None, description="A weekly window's last occurrence starts before this")
    override_group: str | None = Field(None, description="Members may go through with override_freeze and a reason")
    reason: str | None = None


def _may_change(runtime: Runtime, who: Principal, service_id: object) -> None:
    if service_id is None:
        require_admin(who, "change a freeze window of every service")
        return
    try:
        manage_service(runtime, who, UUID(str(service_id)))
    except ValueError:
        raise ValidationError("service_id must be a service id", field="service_id") from None


def _may_change_existing(runtime: Runtime, who: Principal, window_id: UUID) -> None:
    """Owners change their services' windows, except those an administrator created (finding 7)."""
    window = runtime.app.freeze_calendar().window(str(window_id))
    _may_change(runtime, who, window["service_id"])
    if not may_change_window(window, who.is_admin):
        raise PermissionDeniedError(
            f"{who.user} may not change freeze window {window_id}: an administrator created it (administrators only)"
        )


def _window_visible(window: dict[str, Any], readable: set[str] | None) -> bool:
    return window["service_id"] is None or readable is None or window["service_id"] in readable


@router.get("/api/v1/freeze-windows", response_model=FreezeWindowList)
def list_freeze_windows(
    runtime: RuntimeDep,
    who: PrincipalDep,
    service: UUID | None = Query(None, description="Service id: its windows and the global ones"),
    limit: int = Query(500, ge=1, le=500),
) -> FreezeWindowList:
    """Freeze windows: the global ones and those of the services you can read."""
    position = runtime.app.head()
    now = runtime.clock.now()
    readable = readable_service_ids(runtime, who)
    items = [
        window_view(w, now, position)
        for w in runtime.app.freeze_calendar().windows.values()
        if _window_visible(w, readable) and (service is None or w["service_id"] in (None, str(service)))
    ]
    return FreezeWindowList.model_validate({"items": items[:limit], "position": position})


@router.post(
    "/api/v1/freeze-windows",
    status_code=status.HTTP_201_CREATED,
    response_model=FreezeWindow,
    responses=errors(409, 413, 415),
)
def add_freeze_window(body: WindowIn, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> FreezeWindow:
    """Add a window (global: administrators; a service's or a stage's: its owners)."""
    _may_change(runtime, who, body.service_id)
    outcome = runtime.app.add_freeze_window(body.fields(), who.user, body.reason, by_administrator=who.is_admin)
    response.headers["Location"] = f"/api/v1/freeze-windows/{outcome.value['id']}"
    return FreezeWindow.model_validate(window_view(outcome.value, runtime.clock.now(), outcome.position))


@router.get("/api/v1/freeze-windows/{window_id}", response_model=FreezeWindow)
def get_freeze_window(window_id: UUID, runtime: RuntimeDep, who: PrincipalDep) -> FreezeWindow:
    """One freeze window, with the end of the occurrence in force now."""
    window = runtime.app.freeze_calendar().window(str(window_id))
    if not _window_visible(window, readable_service_ids(runtime, who)):
        raise PermissionDeniedError(f"{who.user} holds no role on freeze window {window_id}")
    return FreezeWindow.model_validate(window_view(window, runtime.clock.now(), runtime.app.head()))


@router.put("/api/v1/freeze-windows/{window_id}", response_model=FreezeWindow, responses=errors(409, 413, 415))
def replace_freeze_window(window_id: UUID, body: WindowIn, runtime: RuntimeDep, who: PrincipalDep) -> FreezeWindow:
    """Change a window (its scope stays)."""
    _may_change_existing(runtime, who, window_id)
    outcome = runtime.app.replace_freeze_window(str(window_id), body.fields(), who.user, body.reason)
    return FreezeWindow.model_validate(window_view(outcome.value, runtime.clock.now(), outcome.position))


@router.delete("/api/v1/freeze-windows/{window_id}", response_model=FreezeWindow, responses=errors(409, 413, 415))
def remove_freeze_window(
    window_id: UUID, runtime: RuntimeDep, who: PrincipalDep, body: Reason | None = Body(None)
) -> FreezeWindow:
    """Delete a window."""
    _may_change_existing(runtime, who, window_id)
    outcome = runtime.app.remove_freeze_window(str(window_id), who.user, body.reason if body else None)
    return FreezeWindow.model_validate(window_view(outcome.value, runtime.clock.now(), outcome.position))
