"""Drift steps of the process manager: the periodic check and reverting a drift.

`DriftCheck.run_cycle` reads vCenter once (every VM tagged by Stagekeeper) and records each live
deployment's drift from that one read. `revert` puts one field of one VM back as the history says
(through the driver port, like an upgrade's reconfiguration) and records DriftReverted, or
DriftReverted with `failed` and vCenter's reason; after a revert it compares the deployment again
at once (one read), so the difference is resolved (DriftResolved) without waiting for the cycle.
A revert redone after a crash does nothing twice: each driver call is idempotent and the request
is closed once its event is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain import drift
from domain.deployment import POWERED_ON, Deployment
from domain.errors import InvalidTransitionError, NotFoundError, VCenterFaultError
from domain.ports import Clock, NicSetting, VCenterDriver
from domain.processes.fencing import machine_nics
from domain.stagekeeper import Stagekeeper

log = logging.getLogger(__name__)
ACTOR = "stagekeeper"
TOPICS = ("stagekeeper:Deployment.DriftRevertRequested",)


@dataclass(frozen=True)
class CycleReport:
    at: datetime
    deployments: int  # live deployments compared
    events: int  # DriftDetected / DriftResolved recorded
    vms: int  # tagged VMs read


class DriftCheck:
    def __init__(self, app: Stagekeeper, vcenter: VCenterDriver, clock: Clock, live: Callable[[], list[UUID]]) -> None:
        """`live()` lists the deployments to compare (the deployments read model's deployed ones)."""
        self.app = app
        self.vcenter = vcenter
        self.clock = clock
        self.live = live
        self.last: CycleReport | None = None

    def run_cycle(self) -> CycleReport:
        observed = self.vcenter.managed_vms()  # one read for every deployment
        started = self.clock.now()
        compared = events = 0
        for deployment_id in self.live():
            try:
                deployment = self.app.deployment(deployment_id)
            except NotFoundError:
                continue
            if not drift.checkable(deployment):
                continue
            compared += 1
            outcome = self.app.record_drift(deployment_id, observed, ACTOR)  # writes only what changed
            events += outcome.value.version - deployment.version
        self.last = CycleReport(at=started, deployments=compared, events=events, vms=len(observed))
        return self.last


class DriftSteps:
    """The process manager's part: revert requests."""

    def __init__(self, app: Stagekeeper, vcenter: VCenterDriver) -> None:
        self.app = app
        self.vcenter = vcenter

    def revert(self, deployment_id: UUID, machine: str, field: str) -> None:
        deployment = self.app.deployment(deployment_id)
        entry = (deployment.drift or {}).get(f"{machine}.{field}")
        if entry is None or not entry["reverting"]:
            return  # done already (a redone event), or resolved meanwhile
        failure: str | None = None
        try:
            self._put_back(deployment, deployment.machine(machine), field)
        except (VCenterFaultError, InvalidTransitionError) as fault:
            failure = fault.message
        self.app.record_step(
            deployment_id,
            lambda d: d._drift_reverted(
                machine=machine, field=field, failed=failure is not None, actor=ACTOR, reason=failure
            ),
        )
        if failure is None:  # look again at once: the difference is gone (DriftResolved), or not
            self.app.record_drift(deployment_id, self.vcenter.managed_vms(), ACTOR)

    def _put_back(self, deployment: Deployment, machine: dict[str, object], field: str) -> None:
        vm_id = str(machine["vm_id"])
        spec: dict[str, object] = machine["spec"]  # type: ignore[assignment]
        if field == "power":
            self.vcenter.power(vm_id, "on" if machine.get("power") == POWERED_ON else "off")
        elif field == "resource_pool":
            self.vcenter.relocate(vm_id, str(machine["resource_pool"]))
        elif field in ("cpus", "memory_mib", "disks"):
            cpus, memory = int(spec["cpus"]), int(spec["memory_mib"])  # type: ignore[call-overload]
            disks = tuple(int(d["size_gib"]) for d in spec.get("disks") or [])  # type: ignore[attr-defined]
            cycle = self.vcenter.needs_power_off(vm_id, cpus, memory)
            if cycle:
                self.vcenter.power_off(vm_id)
            try:
                self.vcenter.reconfigure(vm_id, cpus, memory, disks)
            finally:
                if cycle:
                    self.vcenter.power_on(vm_id)
        elif field in ("nics", "macs"):
            macs = (machine.get("addressing") or {}).get("macs", [])  # type: ignore[attr-defined]
            nics: list[NicSetting] = machine_nics(deployment, macs)
            self.vcenter.set_nics(vm_id, nics)
        else:
            raise InvalidTransitionError(f"a '{field}' drift cannot be reverted in place")
