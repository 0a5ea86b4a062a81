"""Fence steps of the deployment process manager: port groups, the gateway, and teardown.

Every vCenter object of a fence has a deterministic name (port groups `sk-<deployment>-<network>`,
the gateway `sk-<deployment>--gw`) and is looked for before it is made, so a worker killed at any
point finishes the fence on restart without a second port group or gateway. Teardown runs in the
order real vCenter needs (it refuses to destroy a port group in use): machines, gateway, port groups.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from functools import partial
from typing import Any

from domain.capture import vcenter_network
from domain.commands.fencing import GATEWAY_MACHINE
from domain.deployment import Deployment
from domain.ports import CloneSpec, NicSetting, VCenterDriver, VmInfo
from domain.stagekeeper import Stagekeeper

ACTOR = "stagekeeper"
NAT_KEY = "guestinfo.stagekeeper.nat"  # the gateway template's documented input (README: fenced networks)
GATEWAY_CPUS = 1
GATEWAY_MEMORY_MIB = 1024


def portgroups(deployment: Deployment) -> dict[str, str]:
    """Configuration network -> the fence's port group for it."""
    assert deployment.fence is not None
    return {n["network"]: n["portgroup"] for n in deployment.fence["networks"]}


def machine_nics(deployment: Deployment, macs: list[dict[str, Any]]) -> list[NicSetting]:
    """A machine's NICs: on its fence's port groups (which must exist) when fenced."""
    if deployment.fence is None:
        return [NicSetting(network=vcenter_network(deployment.machines, n["network"]), mac=n["mac"]) for n in macs]
    groups = portgroups(deployment)
    return [NicSetting(network=groups[n["network"]], mac=n["mac"], exact=True) for n in macs]


def nat_document(deployment: Deployment, networks: list[dict[str, Any]] | None = None) -> str:
    """What the gateway reads from guestinfo.stagekeeper.nat: its NICs in order and the NAT map
    (`networks`: the fenced networks it is wired to, when not all of the fence's)."""
    assert deployment.fence is not None
    fence = deployment.fence
    inside = fence["networks"] if networks is None else networks
    return json.dumps(
        {
            "deployment": str(deployment.id),
            "inside": [{"portgroup": n["portgroup"], "vlan": n["vlan"]} for n in inside],
            "outside": {"network": fence["external_network"], "ip": fence["gateway"]["external_ip"]},
            "nat": fence["nat"],
        },
        sort_keys=True,
    )


class FenceSteps:
    def __init__(self, app: Stagekeeper, vcenter: VCenterDriver) -> None:
        self.app = app
        self.vcenter = vcenter

    def build_networks(self, deployment: Deployment, pool: Executor) -> None:
        """Every fenced network's port group, made at once (found first when it exists)."""
        assert deployment.fence is not None
        switch = deployment.fence["dvswitch"]
        wanted = deployment.fence["networks"]
        for _ in pool.map(lambda n: self.vcenter.ensure_portgroup(switch, n["portgroup"], n["vlan"]), wanted):
            pass
        for network in wanted:
            if not network["created"]:
                step = partial(Deployment.record_fence_network, network=network["network"], created=True, actor=ACTOR)
                self.app.record_step(deployment.id, step)

    @staticmethod
    def gateway_pending(deployment: Deployment) -> bool:
        fence = deployment.fence
        return fence is not None and fence["gateway"] is not None and fence["gateway"]["vm_id"] is None

    def record_gateway(self, deployment: Deployment, vm: VmInfo) -> None:
        self.app.record_step(deployment.id, partial(Deployment.record_fence_gateway, vm_id=vm.vm_id, actor=ACTOR))

    def build_gateway(self, deployment: Deployment) -> VmInfo:
        """Clone the gateway (or find it), wire it, hand it the NAT map, start it (vCenter only)."""
        assert deployment.fence is not None
        fence = deployment.fence
        assert fence["gateway"] is not None
        vm = self.vcenter.clone(
            CloneSpec(
                vm_name=fence["gateway"]["vm_name"], template=fence["gateway_template"],
                resource_pool=deployment.resource_pool, linked=False, cpus=GATEWAY_CPUS,
                memory_mib=GATEWAY_MEMORY_MIB, deployment_id=deployment.id, machine=GATEWAY_MACHINE,
            )
        )  # fmt: skip
        if not vm.powered_on:
            inside = [NicSetting(network=n["portgroup"], exact=True) for n in fence["networks"]]
            self.vcenter.set_nics(vm.vm_id, [*inside, NicSetting(network=fence["external_network"], exact=True)])
            self.vcenter.set_extra_config(vm.vm_id, {NAT_KEY: nat_document(deployment)})
            vm = self.vcenter.power_on(vm.vm_id)
        return vm

    def tear_down(self, deployment: Deployment) -> None:
        """After the machines are gone: the gateway, then the port groups (each recorded)."""
        if deployment.fence is None:
            return
        for vm in self.vcenter.find_vms(deployment.id):
            if vm.machine == GATEWAY_MACHINE:
                self.vcenter.power_off(vm.vm_id)
                self.vcenter.destroy(vm.vm_id)
        if deployment.fence["gateway"] is not None and deployment.fence["gateway"]["vm_id"] is not None:
            self.app.record_step(deployment.id, partial(Deployment.record_fence_gateway, vm_id=None, actor=ACTOR))
        for network in deployment.fence["networks"]:
            self.vcenter.remove_portgroup(deployment.fence["dvswitch"], network["portgroup"])
            if network["created"]:
                step = partial(Deployment.record_fence_network, network=network["network"], created=False, actor=ACTOR)
                self.app.record_step(deployment.id, step)
