"""The driver port's capture methods (describe_vms, tag_vm, untag_vm), run against both drivers: the
simulated one holding a VM made outside Stagekeeper, and the pyvmomi driver against vcsim, where
DC0_H1_VM1 is one of vcsim's own VMs (no other test uses it; tags are removed again at the end)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.vcenter.simulated import SimulatedVCenter
from domain.descriptions import PROVISIONING, VmSelector
from domain.errors import ValidationError, VCenterObjectNotFoundError
from domain.ports import VCenterDriver
from scripts.vcsim_harness import Vcsim

NAME = "DC0_H1_VM1"
POOL = "/DC0/host/DC0_H1/Resources"


@pytest.fixture(params=["simulated", "pyvmomi"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VCenterDriver]:
    if request.param == "simulated":
        simulated = SimulatedVCenter(state_file=tmp_path / "inventory.json")
        # As vcsim makes it: one E1000 NIC on a DV port group, one thin 1 MiB disk, powered on.
        simulated.add_existing_vm(
            NAME, POOL, cpus=1, memory_mib=32, host="DC0_H1",
            nics=[{"network": "DC0_DVPG0", "mac": "00:0c:29:36:63:62", "adapter": "e1000", "label": "ethernet-0"}],
        )  # fmt: skip
        driver: VCenterDriver = simulated
    else:
        sim: Vcsim = request.getfixturevalue("vcsim")
        sim.control("reset")
        driver = sim.driver()
    yield driver
    for found in driver.describe_vms(VmSelector(resource_pool=POOL)):
        if found.name == NAME:
            driver.untag_vm(found.vm_id)
    driver.close()


def test_describes_an_existing_vm_by_name_and_by_id(driver: VCenterDriver) -> None:
    [vm] = driver.describe_vms(VmSelector(vms=(NAME,)))
    assert (vm.name, vm.resource_pool, vm.folder) == (NAME, POOL, "/DC0/vm")
    assert not vm.is_template
    assert vm.powered_on
    assert (vm.deployment_id, vm.machine) == (None, None)
    assert vm.cpus >= 1
    assert vm.memory_mib > 0
    assert vm.host
    assert "LocalDS_0" in vm.datastores
    assert vm.disks
    for disk in vm.disks:
        assert disk.capacity_kib > 0
        assert disk.provisioning in PROVISIONING
        assert disk.file.startswith(f"[{disk.datastore}] ")
        assert disk.delta_chain == ()
    [nic] = vm.nics
    assert (nic.network, nic.adapter) == ("DC0_DVPG0", "e1000")
    assert nic.mac
    assert driver.describe_vms(VmSelector(vms=(vm.vm_id, NAME))) == [vm]


def test_folders_and_pools_select_the_vms_inside_them(driver: VCenterDriver) -> None:
    by_pool = driver.describe_vms(VmSelector(resource_pool=POOL))
    assert NAME in [vm.name for vm in by_pool]
    assert all(vm.resource_pool == POOL for vm in by_pool)
    assert NAME in [vm.name for vm in driver.describe_vms(VmSelector(folder="/DC0/vm"))]


def test_unknown_vms_folders_and_pools_are_named(driver: VCenterDriver) -> None:
    with pytest.raises(VCenterObjectNotFoundError, match="no-such-vm"):
        driver.describe_vms(VmSelector(vms=("no-such-vm",)))
    with pytest.raises(VCenterObjectNotFoundError, match="/DC0/vm/nowhere"):
        driver.describe_vms(VmSelector(folder="/DC0/vm/nowhere"))
    with pytest.raises(VCenterObjectNotFoundError, match=f"{POOL}/nowhere"):
        driver.describe_vms(VmSelector(resource_pool=f"{POOL}/nowhere"))


def test_a_name_several_vms_share_asks_for_the_id(driver: VCenterDriver) -> None:
    [vm] = driver.describe_vms(VmSelector(vms=(NAME,)))
    if isinstance(driver, SimulatedVCenter):
        driver.add_existing_vm(NAME, POOL)
    else:
        pytest.skip("vCenter refuses two VMs of one name in one folder; the rule is shared (descriptions.pick)")
    with pytest.raises(ValidationError, match="several VMs"):
        driver.describe_vms(VmSelector(vms=(NAME,)))
    assert driver.describe_vms(VmSelector(vms=(vm.vm_id,))) == [vm]


def test_tagging_and_untagging_change_nothing_else(driver: VCenterDriver) -> None:
    [before] = driver.describe_vms(VmSelector(vms=(NAME,)))
    deployment = uuid4()
    driver.tag_vm(before.vm_id, deployment, "erp-db")
    driver.tag_vm(before.vm_id, deployment, "erp-db")  # idempotent
    [tagged] = driver.describe_vms(VmSelector(vms=(NAME,)))
    assert (tagged.deployment_id, tagged.machine) == (deployment, "erp-db")
    assert dataclasses.replace(tagged, deployment_id=None, machine=None) == before
    [found] = driver.find_vms(deployment)
    assert (found.vm_id, found.machine, found.powered_on) == (before.vm_id, "erp-db", True)
    driver.untag_vm(before.vm_id)
    driver.untag_vm(before.vm_id)  # idempotent
    assert driver.describe_vms(VmSelector(vms=(NAME,))) == [before]
    assert driver.find_vms(deployment) == []
    driver.untag_vm("vm-987654")  # a VM that is gone: nothing to let go of
