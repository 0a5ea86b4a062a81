"""Snapshot and revert of a whole deployment: every machine, one recorded step each.

A restarted worker skips the machines already recorded; taking a snapshot that exists is a no-op
in the driver, and reverting twice to the same snapshot lands in the same state, so redoing the
step of a machine whose record was lost is harmless.
"""

from __future__ import annotations

from functools import partial

from domain.deployment import DEPLOYED, Deployment
from domain.errors import VCenterFaultError
from domain.ports import VCenterDriver
from domain.stagekeeper import Stagekeeper

ACTOR = "stagekeeper"


class SnapshotSteps:
    def __init__(self, app: Stagekeeper, vcenter: VCenterDriver) -> None:
        self.app = app
        self.vcenter = vcenter

    def carry_out(self, deployment: Deployment) -> None:
        work = deployment.snapshot_work
        assert work is not None
        failure: str | None = None
        if deployment.state != DEPLOYED:
            failure = f"the deployment became {deployment.state} before the {work['action']} ran"
        else:
            try:
                for machine in deployment.machines:
                    if machine["name"] in work["done"] or not machine["vm_id"]:
                        continue
                    if work["action"] == "snapshot":
                        self.vcenter.create_snapshot(machine["vm_id"], work["name"])
                    else:
                        # A snapshot without memory reverts to a powered-off VM: start it again.
                        self.vcenter.revert_snapshot(machine["vm_id"], work["name"])
                        self.vcenter.power_on(machine["vm_id"])
                    step = partial(Deployment.record_machine_snapshot, machine=machine["name"], actor=ACTOR)
                    self.app.record_step(deployment.id, step)
            except VCenterFaultError as fault:
                failure = fault.message
        self.app.record_step(deployment.id, partial(Deployment.complete_snapshot_work, failure=failure, actor=ACTOR))
