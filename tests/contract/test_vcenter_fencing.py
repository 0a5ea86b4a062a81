"""The VCenterDriver contract for fenced networks and snapshots, run against both drivers (the
pyvmomi one on vcsim started with -pg 3: DVS0 with DC0_DVPG0..2)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import VCenterObjectNotFoundError
from domain.ports import CloneSpec, NicSetting, VCenterDriver
from tests.contract.test_vcenter_driver import ROOT, driver, spec

__all__ = ["driver"]  # the two-driver fixture
SWITCH = "DVS0"


def test_a_port_group_is_created_once_with_its_vlan_and_removed(driver: VCenterDriver) -> None:
    name = f"sk-{uuid4().hex[:8]}-front"
    assert driver.ensure_portgroup(SWITCH, name, 1234) is True
    assert driver.ensure_portgroup(SWITCH, name, 1234) is False  # find before create
    found = {p.name: p for p in driver.list_portgroups(SWITCH)}
    assert found[name].vlan == 1234
    assert "DC0_DVPG0" in found
    assert driver.remove_portgroup(SWITCH, name) is True
    assert driver.remove_portgroup(SWITCH, name) is False
    assert name not in {p.name for p in driver.list_portgroups(SWITCH)}


def test_an_unknown_switch_is_a_missing_object(driver: VCenterDriver) -> None:
    with pytest.raises(VCenterObjectNotFoundError):
        driver.ensure_portgroup("NO-SUCH-DVS", "sk-x-y", 10)


def test_two_vms_with_the_same_mac_sit_on_two_port_groups(driver: VCenterDriver) -> None:
    groups = [f"sk-{uuid4().hex[:8]}-back" for _ in range(2)]
    for vlan, group in enumerate(groups, start=100):
        driver.ensure_portgroup(SWITCH, group, vlan)
    keys = {p.name: p.key for p in driver.list_portgroups(SWITCH)}
    vms = []
    for group in groups:
        vm = driver.clone(spec(uuid4(), machine="db"))
        driver.set_nics(vm.vm_id, [NicSetting(network=group, mac="00:50:56:00:00:42", exact=True)])
        vms.append(vm)
    seen = [driver.vm_nics(vm.vm_id) for vm in vms]
    assert [n[0].mac for n in seen] == ["00:50:56:00:00:42"] * 2
    assert [n[0].portgroup_key for n in seen] == [keys[g] for g in groups]
    assert seen[0][0].portgroup_key != seen[1][0].portgroup_key
    with pytest.raises(VCenterObjectNotFoundError):
        driver.set_nics(vms[0].vm_id, [NicSetting(network="sk-nowhere", exact=True)])


def test_extra_config_is_accepted(driver: VCenterDriver) -> None:
    vm = driver.clone(spec(uuid4(), machine="gw"))
    driver.set_extra_config(vm.vm_id, {"guestinfo.stagekeeper.nat": '{"nat": []}'})


def test_snapshots_are_taken_once_listed_and_reverted(driver: VCenterDriver) -> None:
    vm = driver.clone(spec(uuid4(), machine="app"))
    assert driver.create_snapshot(vm.vm_id, "before-patch") is True
    assert driver.create_snapshot(vm.vm_id, "before-patch") is False
    assert driver.create_snapshot(vm.vm_id, "after-patch") is True
    assert driver.list_snapshots(vm.vm_id) == ["before-patch", "after-patch"]
    driver.revert_snapshot(vm.vm_id, "before-patch")
    with pytest.raises(VCenterObjectNotFoundError):
        driver.revert_snapshot(vm.vm_id, "nope")


def test_a_running_vm_is_cloned_linked_from_its_snapshot(driver: VCenterDriver) -> None:
    source = driver.clone(spec(uuid4(), machine="web"))
    driver.power_on(source.vm_id)
    driver.create_snapshot(source.vm_id, "sk-copy")
    copy_of = uuid4()
    copy = driver.clone(
        CloneSpec(
            vm_name=f"sk-copy-{copy_of.hex[:6]}", template="tpl-ubuntu-2404", resource_pool=ROOT, linked=True,
            cpus=2, memory_mib=2048, deployment_id=copy_of, machine="web", source_vm_id=source.vm_id,
            source_snapshot="sk-copy",
        )
    )  # fmt: skip
    assert copy.deployment_id == copy_of
    assert not copy.powered_on


def test_a_snapshot_is_removed_once_and_its_child_stays(driver: VCenterDriver) -> None:
    vm = driver.clone(spec(uuid4(), machine="db"))
    driver.create_snapshot(vm.vm_id, "sk-copy-1")
    driver.create_snapshot(vm.vm_id, "sk-copy-2")
    assert driver.remove_snapshot(vm.vm_id, "sk-copy-1") is True
    assert driver.list_snapshots(vm.vm_id) == ["sk-copy-2"]
    assert driver.remove_snapshot(vm.vm_id, "sk-copy-1") is False
    driver.destroy(vm.vm_id)
    assert driver.remove_snapshot(vm.vm_id, "sk-copy-2") is False  # no VM any more: nothing to remove


def test_a_switch_and_a_network_are_found_by_name(driver: VCenterDriver) -> None:
    assert driver.has_switch(SWITCH) is True
    assert driver.has_switch("NO-SUCH-DVS") is False
    assert driver.has_network("DC0", "VM Network") is True  # a standard network
    assert driver.has_network("DC0", "DC0_DVPG0") is True  # a distributed port group
    assert driver.has_network("DC0", "no-such-network") is False
    assert driver.has_network("NO-SUCH-DC", "VM Network") is False
