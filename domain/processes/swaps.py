"""The swap's vCenter steps, carried out for the incoming deployment (the outgoing one waits).

Order: power off the replaced deployment's machines; move the incoming VMs into the stage's pool;
put their NICs on the stage's own networks (leaving the fence: same MACs, and the guest keeps the
IPs the fence preserved); tear the fence down (gateway, then port groups); power the incoming
machines on; then one write completes both deployments. Each step is recorded per machine and
each vCenter call is idempotent, so a worker killed anywhere resumes without redoing or losing
a step. A vCenter fault is recorded (SwapAttemptFailed) and the step retried later; after
MAX_ATTEMPTS the swap is rolled back: machines of the copy that had joined the production
networks (with production's MACs) are powered off, the replaced machines are started again in
start order, and SwapFailed (vCenter's message) returns both deployments to deployed, the copy
where it stands. The rollback resumes after a restart (the attempts are recorded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from uuid import UUID

from domain.capture import vcenter_network
from domain.commands import swaps
from domain.deployment import SWAPPING, Deployment
from domain.errors import InfrastructureError, VCenterFaultError
from domain.ports import NicSetting, VCenterDriver
from domain.processes.fencing import FenceSteps
from domain.processes.power import power_on_in_order
from domain.stagekeeper import Stagekeeper
from domain.startorder import stop_groups, stop_in_order

ACTOR = "stagekeeper"
MAX_ATTEMPTS = 3  # failed attempts (each retried by the follower with its backoff) before the rollback


class SwapSteps:
    def __init__(
        self,
        app: Stagekeeper,
        vcenter: VCenterDriver,
        fences: FenceSteps,
        sleep: Callable[[float], None] = time.sleep,  # start-order waits; tests replace it
    ) -> None:
        self.app = app
        self.vcenter = vcenter
        self.fences = fences
        self.sleep = sleep

    def carry_out(self, incoming: Deployment) -> None:
        assert incoming.swap is not None
        if incoming.swap["role"] != "incoming":
            return  # the outgoing deployment rests until the incoming one completes the swap
        outgoing = self.app.deployment(UUID(incoming.swap["partner"]))
        if outgoing.state != SWAPPING:
            raise InfrastructureError(f"swap of {incoming.id}: its partner {outgoing.id} is {outgoing.state}")
        if incoming.swap_failures >= MAX_ATTEMPTS:
            self._roll_back(incoming, outgoing)
            return
        try:
            self._steps(incoming, outgoing)
        except VCenterFaultError as fault:
            step = partial(Deployment.record_swap_attempt_failed, reason=fault.message, actor=ACTOR)
            incoming = self.app.record_step(incoming.id, step).value
            if incoming.swap_failures < MAX_ATTEMPTS:
                raise InfrastructureError(f"swap of {incoming.id} failed: {fault.message}") from fault
            self._roll_back(incoming, outgoing)
            return
        self.app.complete_swap(incoming.id, ACTOR)

    def _roll_back(self, incoming: Deployment, outgoing: Deployment) -> None:
        assert incoming.swap is not None
        reason = f"swap given up after {incoming.swap_failures} failed attempts: {incoming.swap.get('last_failure')}"
        try:
            for machine in incoming.machines:
                # Left the fence with production's MACs: it must not run beside production.
                if machine["vm_id"] and incoming.swap_step_done("joined", machine["name"]):
                    self.vcenter.power_off(machine["vm_id"])
            starting = {m["name"]: (m["spec"], m["vm_id"]) for m in outgoing.machines if m["vm_id"]}
            power_on_in_order(self.vcenter, self.sleep, starting, lambda _name, _vm: None)
        except VCenterFaultError as fault:
            # Still failing: the rollback is retried later (and resumes: each call is idempotent).
            raise InfrastructureError(f"rollback of the swap of {incoming.id} failed: {fault.message}") from fault
        swaps.fail(self.app, incoming.id, reason, ACTOR)

    def _record(self, deployment: Deployment, step: str, machine: str) -> None:
        self.app.record_step(
            deployment.id, partial(Deployment.record_swap_step, step=step, machine=machine, actor=ACTOR)
        )

    def _steps(self, incoming: Deployment, outgoing: Deployment) -> None:
        assert incoming.swap is not None
        # The replaced machines stop in reverse start order, the incoming ones start in start order.
        off = {m["name"]: m["vm_id"] for m in outgoing.machines}

        def stop(names: tuple[str, ...]) -> None:
            for name in names:
                self.vcenter.power_off(off[name])
                self._record(incoming, "off", name)

        stop_in_order(
            stop_groups(m["spec"] for m in outgoing.machines),
            stop,
            lambda name: bool(off[name]) and not incoming.swap_step_done("off", name),
        )
        target = incoming.swap["to_pool"]
        for machine in incoming.machines:
            if (
                machine["vm_id"]
                and not machine.get("captured_vm_id")  # adopted VMs stay in their own pools (swap-back)
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
                        machine["vm_id"],
                        [
                            NicSetting(network=vcenter_network(incoming.machines, n["network"]), mac=n["mac"])
                            for n in macs
                        ],
                    )
                    self._record(incoming, "joined", machine["name"])
            self.fences.tear_down(self.app.deployment(incoming.id))
        starting = {
            m["name"]: (m["spec"], m["vm_id"])
            for m in incoming.machines
            if m["vm_id"] and not incoming.swap_step_done("on", m["name"])
        }
        power_on_in_order(self.vcenter, self.sleep, starting, lambda name, _vm: self._record(incoming, "on", name))
