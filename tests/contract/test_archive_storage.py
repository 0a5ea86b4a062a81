"""The archive storage port (domain/archive_ports.py), one suite for both implementations: the
simulated vCenter's, and the pyvmomi driver's against vcsim with `-ds 2` (LocalDS_1 a real folder)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.archives import make_archive_storage
from adapters.vcenter.simulated import SimulatedVCenter
from domain.archive_ports import ArchiveStorage, DatastoreFile
from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.ports import CloneSpec, VCenterDriver
from scripts.vcsim_harness import Vcsim
from scripts.vcsim_harness import start as start_vcsim
from tests.support import ROOT_POOL


@pytest.fixture(scope="module")
def vcsim2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    sim = start_vcsim(tmp_path_factory.mktemp("vcsim-storage") / "vcsim.log", "-pg", "3", "-ds", "2")
    yield sim
    sim.stop()


@pytest.fixture(params=["simulated", "vcsim"])
def vcenter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VCenterDriver]:
    if request.param == "simulated":
        yield SimulatedVCenter()
        return
    sim: Vcsim = request.getfixturevalue("vcsim2")
    driver = sim.driver(task_timeout=10)
    yield driver
    driver.close()


@pytest.fixture
def storage(vcenter: VCenterDriver) -> ArchiveStorage:
    return make_archive_storage(vcenter)


def a_vm(vcenter: VCenterDriver) -> str:
    deployment = uuid4()
    spec = CloneSpec(vm_name=f"sk-{deployment.hex[:12]}-web", template="tpl-ubuntu-2404", resource_pool=ROOT_POOL,
                     linked=False, cpus=2, memory_mib=2048, deployment_id=deployment, machine="web")  # fmt: skip
    return vcenter.clone(spec).vm_id


def test_a_vm_has_a_record_and_files_in_its_folder(vcenter: VCenterDriver, storage: ArchiveStorage) -> None:
    vm_id = a_vm(vcenter)
    record = storage.machine_record(vm_id)
    assert (record["cpus"], record["memory_mib"], record["datastore"]) == (2, 2048, "LocalDS_0")
    assert record["vmx"] == f"{record['name']}.vmx"
    assert record["disks"]
    files = storage.vm_files(vm_id)
    names = {f.path.rsplit("/", 1)[-1] for f in files}
    assert record["vmx"] in names
    assert all(f.datastore == "LocalDS_0" and f.path.startswith(record["folder"] + "/") for f in files)
    sized = storage.vm_file_sizes(vm_id)
    assert [f for f, _ in sized] == files
    assert all(size == storage.digest(f).size for f, size in sized)  # the listed size is the file's


def test_copy_digest_stream_and_delete_files(vcenter: VCenterDriver, storage: ArchiveStorage) -> None:
    folder = DatastoreFile("LocalDS_1", f"stagekeeper-archives/{uuid4()}/web")
    storage.make_folder(folder)
    storage.make_folder(folder)  # an existing folder is no error
    data = hashlib.sha256(b"disk").digest() * 4096
    source = DatastoreFile("LocalDS_1", f"{folder.path}/a.bin")
    storage.write_file(source, io.BytesIO(data), len(data))
    digest = storage.digest(source)
    assert (digest.size, digest.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    target = DatastoreFile("LocalDS_1", f"{folder.path}/b.bin")
    storage.copy_file(source, target)
    storage.copy_file(source, target)  # a half-written target is replaced
    assert storage.digest(target) == digest
    assert storage.read_file(target, lambda stream: stream.read(5)) == data[:5]
    storage.delete_folder(target)
    with pytest.raises(VCenterObjectNotFoundError):
        storage.digest(target)
    storage.delete_folder(folder)
    storage.delete_folder(folder)  # already gone: no error
    with pytest.raises((VCenterObjectNotFoundError, VCenterFaultError)):
        storage.digest(source)


def test_register_restores_the_recorded_devices(vcenter: VCenterDriver, storage: ArchiveStorage) -> None:
    vm_id = a_vm(vcenter)
    record = storage.machine_record(vm_id)
    name = f"sk-{uuid4().hex[:12]}-copy"
    folder = DatastoreFile("LocalDS_0", name)
    storage.make_folder(folder)
    for file in storage.vm_files(vm_id):
        base = file.path.rsplit("/", 1)[-1]
        storage.copy_file(
            file,
            DatastoreFile(
                "LocalDS_0",
                f"{name}/{name}{base[len(record['name']) :]}" if base.startswith(record["name"]) else f"{name}/{base}",
            ),
        )
    renamed = {**record, "disks": [{**d, "file": name + d["file"][len(record["name"]) :]} for d in record["disks"]]}
    registered = storage.register_vm(DatastoreFile("LocalDS_0", f"{name}/{name}.vmx"), name, ROOT_POOL, renamed)
    again = storage.register_vm(DatastoreFile("LocalDS_0", f"{name}/{name}.vmx"), name, ROOT_POOL, renamed)
    assert again == registered
    copy = storage.machine_record(registered)
    assert (copy["cpus"], copy["memory_mib"]) == (record["cpus"], record["memory_mib"])
    assert [d["file"] for d in copy["disks"]] == [d["file"] for d in renamed["disks"]]
    assert [n["mac"] for n in copy["nics"]] == [n["mac"] for n in record["nics"]]


def test_a_vm_registered_without_disks_gets_them_once_their_files_are_there(
    vcenter: VCenterDriver, storage: ArchiveStorage
) -> None:
    """A restore registers each VM while its disk files still copy, and attaches the disks after."""
    vm_id = a_vm(vcenter)
    record = storage.machine_record(vm_id)
    name = f"sk-{uuid4().hex[:12]}-copy"
    storage.make_folder(DatastoreFile("LocalDS_0", name))
    copies = []
    for file in storage.vm_files(vm_id):
        base = file.path.rsplit("/", 1)[-1]
        renamed_base = f"{name}{base[len(record['name']) :]}" if base.startswith(record["name"]) else base
        copies.append((file, DatastoreFile("LocalDS_0", f"{name}/{renamed_base}")))
    disks = [(f, t) for f, t in copies if t.path.endswith(".vmdk")]
    for file, target in copies:
        if (file, target) not in disks:
            storage.copy_file(file, target)
    renamed = {**record, "disks": [{**d, "file": name + d["file"][len(record["name"]) :]} for d in record["disks"]]}
    vmx = DatastoreFile("LocalDS_0", f"{name}/{name}.vmx")
    registered = storage.register_vm(vmx, name, ROOT_POOL, {**renamed, "disks": []})
    with pytest.raises(VCenterFaultError, match="FileNotFound"):
        storage.attach_disks(registered, vmx, renamed)  # the disk files are not there yet
    for file, target in disks:
        storage.copy_file(file, target)
    storage.attach_disks(registered, vmx, renamed)
    storage.attach_disks(registered, vmx, renamed)  # a retried step adds nothing twice
    copy = storage.machine_record(registered)
    assert [d["file"] for d in copy["disks"]] == [d["file"] for d in renamed["disks"]]
    assert [n["mac"] for n in copy["nics"]] == [n["mac"] for n in record["nics"]]


def test_power_on_starts_a_vm_and_one_already_on_is_no_error(vcenter: VCenterDriver, storage: ArchiveStorage) -> None:
    vm_id = a_vm(vcenter)
    vcenter.power_off(vm_id)
    assert storage.machine_record(vm_id)["power"] == "poweredOff"
    storage.power_on(vm_id)
    assert storage.machine_record(vm_id)["power"] == "poweredOn"
    storage.power_on(vm_id)  # a retried step
    assert storage.machine_record(vm_id)["power"] == "poweredOn"
