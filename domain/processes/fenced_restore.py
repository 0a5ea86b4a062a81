"""The vCenter steps of a restore behind a fence (see domain/commands/fenced_restore.py).

The machines are registered powered off (their archived NICs would put production's MACs on
production's networks); once the restored deployment and its fence plan are written, the fence's
port groups are made, every NIC is moved onto its network's port group with its archived MAC, the
machines are powered on and the gateway is added with its NAT map, by the same FenceSteps a fenced
deploy or copy uses. Every step finds what an interrupted worker made, so a restart on the archive's
Restored event finishes the fence.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from domain.archive import Archive
from domain.deployment import DEPLOYED
from domain.errors import NotFoundError
from domain.ports import VCenterDriver
from domain.processes.fencing import FenceSteps, machine_nics
from domain.stagekeeper import Stagekeeper


def pending(app: Stagekeeper, archive: Archive) -> list[UUID]:
    """The fenced restores whose deployment is written and still deployed but whose gateway is not."""
    found = []
    for restore in archive.restores.values():
        if not restore.get("fence") or restore["state"] != "restored":
            continue
        try:
            deployment = app.deployment(UUID(restore["deployment_id"]))
        except NotFoundError:
            continue
        if deployment.state == DEPLOYED and FenceSteps.gateway_pending(deployment):
            found.append(deployment.id)
    return found


def finish(app: Stagekeeper, vcenter: VCenterDriver, deployment_id: UUID, parallel: int) -> None:
    """Port groups, the machines' NICs on them, power on, then the gateway (recorded)."""
    fences = FenceSteps(app, vcenter)
    deployment = app.deployment(deployment_id)
    with ThreadPoolExecutor(max(1, parallel), thread_name_prefix="sk-fence-restore") as pool:
        fences.build_networks(deployment, pool)
        deployment = app.deployment(deployment_id)

        def wire(machine: dict[str, Any]) -> None:
            vcenter.set_nics(machine["vm_id"], machine_nics(deployment, machine["addressing"]["macs"]))
            vcenter.power_on(machine["vm_id"])

        for _ in pool.map(wire, deployment.machines):
            pass
    fences.record_gateway(deployment, fences.build_gateway(deployment))
