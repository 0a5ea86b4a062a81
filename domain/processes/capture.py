"""The process manager's steps for captured deployments: tag the adopted VMs, and undeploy them
(let go: untag and leave running; or destroy, by the VM ids the deployment recorded).

Each step is an event recorded after its vCenter call, and every call is idempotent (tagging a
tagged VM, untagging an untagged one, destroying a VM that is gone change nothing), so a worker
killed at any point redoes at most one call on restart.
"""

from __future__ import annotations

from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING

from domain.deployment import Deployment
from domain.errors import VCenterObjectNotFoundError

if TYPE_CHECKING:
    from domain.processes.deployments import DeploymentProcess


def tag_captured(process: DeploymentProcess, deployment: Deployment, actor: str) -> None:
    for machine in deployment.untagged_machines():
        process.vcenter.tag_vm(machine["vm_id"], deployment.id, machine["name"])
        process.app.record_step(
            deployment.id, partial(Deployment.record_machine_tagged, machine=machine["name"], actor=actor)
        )


def undeploy_captured(process: DeploymentProcess, deployment: Deployment, actor: str) -> None:
    for machine in deployment.machines:
        if machine["state"] != "provisioned" or not machine.get("vm_id"):
            continue
        if deployment.letting_go:
            process.vcenter.untag_vm(machine["vm_id"])
            step = partial(Deployment.record_machine_released, machine=machine["name"], actor=actor)
        else:
            with suppress(VCenterObjectNotFoundError):  # gone already: destroy below is a no-op too
                process.vcenter.power_off(machine["vm_id"])
            process.vcenter.destroy(machine["vm_id"])
            step = partial(Deployment.record_machine_destroyed, machine=machine["name"], actor=actor)
        process.app.record_step(deployment.id, step)
    if not deployment.letting_go:  # a fenced restore: its gateway, then its port groups
        process.fences.tear_down(process.app.deployment(deployment.id))
    process.app.record_step(deployment.id, lambda d: d.mark_undeployed(actor))
