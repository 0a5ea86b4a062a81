"""Which actions to offer a user: the API's permission rules and the aggregates' own state rules,
asked before a page is drawn. The same rules refuse the command if the form is forged anyway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.auth import Principal
from domain.deployment import DEPLOYED, FAILED, POWERED_ON, UNDEPLOYABLE_FROM, Deployment
from domain.errors import InvalidTransitionError
from domain.permissions import can_capture, can_manage, can_operate
from domain.service import Service


def _grants(service: Service) -> list[dict[str, Any]]:
    return list(service.grants.values())


def may_manage(service: Service, who: Principal) -> bool:
    return can_manage(_grants(service), who.caller)


def may_operate(service: Service, who: Principal, stage_name: str) -> bool:
    return can_operate(_grants(service), who.caller, service.stage(stage_name))


def may_capture(service: Service, who: Principal, stage_name: str) -> bool:
    return can_capture(_grants(service), who.caller, service.stage(stage_name))


@dataclass(frozen=True)
class Move:
    """A promotion or demotion on offer: where to, and whether that stage is restricted."""

    verb: str  # "promote" | "demote"
    to_stage: str
    restricted: bool


def neighbour(service: Service, stage: str, step: int) -> dict[str, Any] | None:
    try:
        return service.next_stage(stage, step)
    except InvalidTransitionError:
        return None


UPGRADE_CHOICES = 100  # the newest versions offered in the Upgrade dialog


def deployment_actions(
    service: Service, deployment: Deployment, who: Principal, latest_version: int | None = None
) -> dict[str, Any]:
    """The buttons to show on a deployment (API rule: promote needs the target stage, the rest the current)."""
    here = service.stage(deployment.stage)
    operates_here = can_operate(_grants(service), who.caller, here)
    actions: dict[str, Any] = {"promote": None, "demote": None, "undeploy": False, "retry": False, "power": False}
    if deployment.state == DEPLOYED:
        up, down = neighbour(service, deployment.stage, +1), neighbour(service, deployment.stage, -1)
        if up is not None and can_operate(_grants(service), who.caller, up):
            actions["promote"] = Move("promote", up["name"], bool(up.get("restricted")))
        if down is not None and operates_here:
            actions["demote"] = Move("demote", down["name"], bool(here.get("restricted")))
    actions["undeploy"] = operates_here and deployment.state in UNDEPLOYABLE_FROM
    actions["retry"] = operates_here and deployment.state == FAILED
    actions["power"] = operates_here and deployment.state == DEPLOYED
    # Upgrade in place: to any other version of the configuration (newest first).
    versions = range(latest_version or 0, max(0, (latest_version or 0) - UPGRADE_CHOICES), -1)
    actions["upgrade"] = [v for v in versions if v != deployment.configuration_version] if actions["power"] else []
    # Whole-deployment power: on when some VM is off, off when some VM is on (the domain's rule refuses the rest).
    powers = [m.get("power") == POWERED_ON for m in deployment.machines if m.get("vm_id")]
    actions["power_all"] = {"on": not all(powers), "off": any(powers)} if actions["power"] and powers else None
    actions["restricted_here"] = bool(here.get("restricted"))
    return actions


def copy_actions(
    service: Service, deployment: Deployment, who: Principal, source: Deployment | None, replacer: Deployment | None
) -> dict[str, Any]:
    """Copy, snapshot, revert, swap and swap back (API rules: a copy needs read access here and the
    target stage; a swap the replaced deployment's stage; the rest this deployment's stage)."""
    deployed = deployment.state == DEPLOYED
    operates_here = can_operate(_grants(service), who.caller, service.stage(deployment.stage))
    copy_to = [
        {"name": s["name"], "always": s.get("fence") == "always", "fenceable": bool(s.get("dvswitch"))}
        for s in service.stages
        if deployed and can_operate(_grants(service), who.caller, s)
    ]
    swap_into = None
    if deployed and source is not None and source.state == DEPLOYED and may_operate(service, who, source.stage):
        swap_into = {"id": str(source.id), "stage": source.stage, "version": source.configuration_version}
    swap_back = (
        deployed and operates_here and replacer is not None and replacer.state == DEPLOYED
        and replacer.replaced == str(deployment.id)
    )  # fmt: skip
    return {
        "copy_to": copy_to,
        "snapshot": deployed and operates_here,
        "revert": list(deployment.snapshots) if deployed and operates_here else [],
        "swap_into": swap_into,
        "swap_back": swap_back,
    }
