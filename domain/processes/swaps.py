"""The swap's vCenter steps, carried out for the incoming deployment (the outgoing one waits).

Order: power off the replaced deployment's machines; move the incoming VMs into the stage's pool;
put their NICs on the stage's own networks (leaving the fence: same MACs, and the guest keeps the
IPs the fence preserved); tear the fence down (gateway, then port groups); power the incoming
machines on; then one write completes both deployments. Each step is recorded per machine and
each vCenter call is idempotent, so a worker killed anywhere resumes without redoing or losing
a step. A vCenter fault leaves both deployments swapping and the step is retried later.
"""

from __future__ import annotations

from functools import partial
from uuid import UUID

from domain.deployment import SWAPPING, Deployment
from domain.errors import InfrastructureError, VCenterFaultError
from domain.ports import NicSetting, VCenterDriver
from domain.processes.fencing import FenceSteps
from domain.stagekeeper import Stagekeeper

ACTOR = "stagekeeper"


class SwapSteps:
    def __init__(self, app: Stagekeeper, vcenter: VCenterDriver, fences: FenceSteps) -> None:
        self.app = app
        self.vcenter = vcenter
        self.fences = fences

    def carry_out(self, incoming: Deployment) -> None:
        assert incoming.swap is not None
        if incoming.swap["role"] != "incoming":
            return  # the outgoing deployment rests until the incoming one completes the swap
        outgoing = self.app.deployment(UUID(incoming.swap["partner"]))
        if outgoing.state != SWAPPING:
            raise InfrastructureError(f"swap of {incoming.id}: its partner {outgoing.id} is {outgoing.state}")
        try:
            self._steps(incoming, outgoing)
        except VCenterFaultError as fault:
            raise InfrastructureError(f"swap of {incoming.id} failed: {fault.message}") from fault
        self.app.complete_swap(incoming.id, ACTOR)

    def _record(self, deployment: Deployment, step: str, machine: str) -> None:
        self.app.record_step(
            deployment.id, partial(Deployment.record_swap_step, step=step, machine=machine, actor=ACTOR)
        )

    def _steps(self, incoming: Deployment, outgoing: Deployment) -> None:
        assert incoming.swap is not None
        for machine in outgoing.machines:
            if machine["vm_id"] and not incoming.swap_step_done("off", machine["name"]):
                self.vcenter.power_off(machine["vm_id"])
                self._record(incoming, "off", machine["name"])
        target = incoming.swap["to_pool"]
        for machine in incoming.machines:
            if (
                machine["vm_id"]
                and machine["resource_pool"] != target
                and not incoming.swap_step_done("moved", machine["name"])
            ):
                self.vcenter.relocate(machine["vm_id"], target)
                self._record(incoming, "moved", machine["name"])
        if incoming.fence is not None:
            for machine in incoming.machines:
                if machine["vm_id"] and not incoming.swap_step_done("joined", machine["name"]):
                    macs = (machine.get("addressing") or {}).get("macs", [])
                    self.vcenter.set_nics(
                        machine["vm_id"], [NicSetting(network=n["network"], mac=n["mac"]) for n in macs]
                    )
                    self._record(incoming, "joined", machine["name"])
            self.fences.tear_down(self.app.deployment(incoming.id))
        for machine in incoming.machines:
            if machine["vm_id"] and not incoming.swap_step_done("on", machine["name"]):
                self.vcenter.power_on(machine["vm_id"])
                self._record(incoming, "on", machine["name"])
