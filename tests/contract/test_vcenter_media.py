"""The DatastoreFiles contract (media library), run against both drivers: the simulation, and
the pyvmomi driver against vcsim's datastore LocalDS_0 (real files, real datastore browser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.media_ports import DatastoreFiles, datastore_files
from domain.ports import CloneSpec
from scripts.vcsim_harness import Vcsim

DC, DS = "DC0", "LocalDS_0"


@pytest.fixture(params=["simulated", "pyvmomi"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimulatedVCenter | PyVmomiDriver]:
    if request.param == "simulated":
        driver: SimulatedVCenter | PyVmomiDriver = SimulatedVCenter(state_file=tmp_path / "inventory.json")
    else:
        sim: Vcsim = request.getfixturevalue("vcsim")
        driver = sim.driver()
    yield driver
    driver.close()


def chunks(size: int, piece: int = 65536) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        part = min(piece, size - sent)
        yield bytes([sent % 251]) * part
        sent += part


def test_both_drivers_are_the_media_port(driver: SimulatedVCenter | PyVmomiDriver) -> None:
    assert isinstance(datastore_files(driver), DatastoreFiles)


def test_an_uploaded_file_is_found_by_pattern_with_its_size_and_deleted_once(
    driver: SimulatedVCenter | PyVmomiDriver,
) -> None:
    folder = f"sk-contract-{uuid4().hex[:8]}"
    driver.upload_file(DC, DS, f"{folder}/alpine.iso", chunks(200_000), 200_000)
    driver.upload_file(DC, DS, f"{folder}/notes.txt", chunks(10), 10)
    found = driver.search_datastore(DC, DS, folder, "*.iso")
    assert [(f.path, f.size) for f in found] == [(f"{folder}/alpine.iso", 200_000)]
    assert found[0].datastore_path == f"[{DS}] {folder}/alpine.iso"
    assert driver.delete_file(DC, DS, f"{folder}/alpine.iso") is True
    assert driver.delete_file(DC, DS, f"{folder}/alpine.iso") is False
    assert driver.search_datastore(DC, DS, folder, "*.iso") == []


def test_a_missing_folder_has_no_files(driver: SimulatedVCenter | PyVmomiDriver) -> None:
    assert driver.search_datastore(DC, DS, f"sk-none-{uuid4().hex[:8]}", "*.iso") == []


def test_a_short_upload_fails_and_leaves_no_file(driver: SimulatedVCenter | PyVmomiDriver) -> None:
    folder = f"sk-contract-{uuid4().hex[:8]}"
    with pytest.raises(VCenterFaultError, match="bytes"):
        driver.upload_file(DC, DS, f"{folder}/short.iso", chunks(1000), 5000)
    assert driver.search_datastore(DC, DS, folder, "*.iso") == []


def test_an_unknown_datastore_is_a_missing_object(driver: SimulatedVCenter | PyVmomiDriver) -> None:
    with pytest.raises(VCenterObjectNotFoundError, match="NoSuchDS"):
        driver.upload_file(DC, "NoSuchDS", "x/y.iso", chunks(1), 1)
    with pytest.raises(VCenterObjectNotFoundError, match="NoSuchDS"):
        driver.search_datastore(DC, "NoSuchDS", "x", "*.iso")


def test_an_iso_is_attached_as_a_connected_cdrom_once(driver: SimulatedVCenter | PyVmomiDriver) -> None:
    deployment = uuid4()
    vm = driver.clone(
        CloneSpec(
            vm_name=f"sk-media-{deployment.hex[:6]}", template="tpl-ubuntu-2404",
            resource_pool="/DC0/host/DC0_C0/Resources", linked=False, cpus=1, memory_mib=512,
            deployment_id=deployment, machine="web1",
        )
    )  # fmt: skip
    iso = f"[{DS}] sk-media/{deployment.hex}.iso"
    driver.attach_iso(vm.vm_id, iso)
    driver.attach_iso(vm.vm_id, iso)
    assert driver.vm_isos(vm.vm_id)[:1] == [iso]
    assert driver.vm_isos(vm.vm_id).count(iso) == 1
    driver.destroy(vm.vm_id)
