"""The VCenterDriver contract for drift detection (`managed_vms`), run against both drivers: the
simulated one and the pyvmomi driver on vcsim. Every tagged VM, as it is now; untagged VMs and
templates are left out."""

from __future__ import annotations

from uuid import uuid4

from domain.ports import NicSetting, VCenterDriver
from tests.contract.test_vcenter_driver import ROOT, driver, spec

__all__ = ["driver"]  # the fixture, shared with the driver's main contract suite


def test_managed_vms_reads_every_tagged_vm_as_it_is_now(driver: VCenterDriver) -> None:
    deployment = uuid4()
    vm = driver.clone(spec(deployment, "db"))
    driver.set_nics(vm.vm_id, [NicSetting(network="VM Network", mac="00:50:56:3f:00:21")])
    driver.reconfigure(vm.vm_id, 3, 3072, ())
    driver.power_on(vm.vm_id)
    found = {o.vm_id: o for o in driver.managed_vms()}
    seen = found[vm.vm_id]
    assert (seen.deployment_id, seen.machine) == (deployment, "db")
    assert (seen.power, seen.cpus, seen.memory_mib) == ("poweredOn", 3, 3072)
    assert seen.macs == ("00:50:56:3f:00:21",)
    assert seen.networks == ("VM Network",)
    assert seen.resource_pool == ROOT
    assert len(seen.disks_gib) >= 1
    assert all(size > 0 for size in seen.disks_gib)
    assert not any(o.name.startswith("tpl-") for o in found.values())  # templates are no managed VMs
    driver.power_off(vm.vm_id)
    assert {o.vm_id: o for o in driver.managed_vms()}[vm.vm_id].power == "poweredOff"
    driver.untag_vm(vm.vm_id)
    assert vm.vm_id not in {o.vm_id for o in driver.managed_vms()}
    driver.destroy(vm.vm_id)


def test_a_destroyed_vm_is_no_longer_read(driver: VCenterDriver) -> None:
    vm = driver.clone(spec(uuid4(), "gone"))
    assert vm.vm_id in {o.vm_id for o in driver.managed_vms()}
    driver.destroy(vm.vm_id)
    assert vm.vm_id not in {o.vm_id for o in driver.managed_vms()}
