"""The placement part of the VCenterDriver contract, against both drivers: the inventory placement
reads (hosts' free CPU and memory, datastores' free space, DRS), DRS's recommendation, and moving a
VM to another host (read back from runtime.host). vcsim's default inventory: cluster DC0_C0 with
hosts DC0_C0_H0..H2 (DRS on), standalone hosts DC0_H0 and DC0_H1, datastore LocalDS_0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import VCenterObjectNotFoundError
from domain.ports import CloneSpec, VCenterDriver
from scripts.vcsim_harness import Vcsim

ROOT = "/DC0/host/DC0_C0/Resources"


@pytest.fixture(params=["simulated", "pyvmomi"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VCenterDriver]:
    if request.param == "simulated":
        driver: VCenterDriver = SimulatedVCenter(state_file=tmp_path / "inventory.json")
    else:
        sim: Vcsim = request.getfixturevalue("vcsim")
        sim.control("reset")
        driver = sim.driver()
    yield driver
    driver.close()


def test_the_inventory_names_clusters_hosts_datastores_and_drs(driver: VCenterDriver) -> None:
    found = {c.name: c for c in driver.placement_inventory("DC0")}
    cluster = found["DC0_C0"]
    assert cluster.drs
    assert [h.name for h in cluster.hosts] == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    assert all(h.usable and h.free_memory_mib > 0 and h.free_cpu_mhz > 0 for h in cluster.hosts)
    assert [d.name for d in cluster.datastores] == ["LocalDS_0"]
    assert 0 < cluster.datastores[0].free_mib <= cluster.datastores[0].capacity_mib
    assert not found["DC0_H0"].drs
    assert [h.name for h in found["DC0_H0"].hosts] == ["DC0_H0"]
    with pytest.raises(VCenterObjectNotFoundError):
        driver.placement_inventory("NODC")


def test_drs_recommends_a_host_and_datastore_of_the_cluster(driver: VCenterDriver) -> None:
    advice = driver.recommend_placement("DC0", "DC0_C0", 1, 512)
    assert advice is not None
    assert advice.host in {"DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"}
    assert advice.datastore in (None, "LocalDS_0")


def test_a_vm_is_moved_to_another_host_of_its_cluster_and_read_back(driver: VCenterDriver) -> None:
    deployment = uuid4()
    vm = driver.clone(
        CloneSpec(
            vm_name=f"sk-place-{deployment.hex[:6]}", template="tpl-ubuntu-2404", resource_pool=ROOT, linked=False,
            cpus=1, memory_mib=512, deployment_id=deployment, machine="web1", datastore="LocalDS_0",
        )
    )  # fmt: skip
    before = driver.vm_location(vm.vm_id)
    assert before.datastore == "LocalDS_0"
    target = "DC0_C0_H2" if before.host != "DC0_C0_H2" else "DC0_C0_H1"
    driver.relocate_to_host(vm.vm_id, target, None)
    assert driver.vm_location(vm.vm_id).host == target
    driver.relocate_to_host(vm.vm_id, "DC0_C0_H0", "LocalDS_0")
    assert driver.vm_location(vm.vm_id).host == "DC0_C0_H0"
    driver.destroy(vm.vm_id)


def test_drs_asked_after_reading_the_inventory_recommends_a_host_of_that_cluster(driver: VCenterDriver) -> None:
    driver.placement_inventory("DC0")  # as a placement pass does, before it asks
    advice = driver.recommend_placement("DC0", "DC0_C0", 2, 2048)
    assert advice is not None
    assert advice.host in {"DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"}
    assert advice.datastore in (None, "LocalDS_0")


def test_a_new_clone_moved_before_its_location_was_asked_is_read_where_it_went(driver: VCenterDriver) -> None:
    """The driver may know where a clone landed from reading it right after the clone; a move
    makes that stale."""
    deployment = uuid4()
    vm = driver.clone(
        CloneSpec(
            vm_name=f"sk-moved-{deployment.hex[:6]}", template="tpl-ubuntu-2404", resource_pool=ROOT, linked=False,
            cpus=1, memory_mib=512, deployment_id=deployment, machine="web1", host="DC0_C0_H0",
        )
    )  # fmt: skip
    for target in ("DC0_C0_H2", "DC0_C0_H1"):
        driver.relocate_to_host(vm.vm_id, target, None)
        assert driver.vm_location(vm.vm_id).host == target
    driver.destroy(vm.vm_id)
