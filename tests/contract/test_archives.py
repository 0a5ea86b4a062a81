"""Archive Now and restore over the simulated vCenter, on every persistence: every file of every
machine lands on the archive tier with its SHA-256, a second archive of the same machines stores
nothing twice, a restore brings the machines back as a running deployment of the archived
configuration version, and a corrupted file fails the restore naming it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.vcenter.simulated_archives import SimulatedArchiveStorage
from domain.archive_ports import DatastoreFile
from domain.errors import ConflictError, InvalidTransitionError, ValidationError
from tests.support import machine, stages

MACHINES = [machine("web"), machine("app"), machine("db", template="tpl-rhel-9")]


@pytest.fixture
def deployment_id(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("payroll", "", stages("int", "test", "prod"), actor="a").value
    configuration = runtime.app.create_configuration(service.id, "p3", "", [{"name": "front"}], MACHINES, actor="a")
    deployment_id = runtime.app.deploy(configuration.value.id, "int", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def storage(runtime: Runtime) -> SimulatedArchiveStorage:
    assert isinstance(runtime.archive_storage, SimulatedArchiveStorage)
    return runtime.archive_storage


def archived(runtime: Runtime, deployment_id: UUID) -> UUID:
    archive_id = runtime.app.archive_now(deployment_id, actor="alice", reason="before the upgrade").value.id
    runtime.catch_up()
    archive = runtime.app.archive(archive_id)
    assert archive.state == "complete", archive.failure
    return archive_id


def test_archive_now_copies_every_file_of_every_machine_to_the_tier_with_its_sha256(
    runtime: Runtime, vcenter: SimulatedVCenter, deployment_id: UUID
) -> None:
    archive = runtime.app.archive(archived(runtime, deployment_id))
    files = storage(runtime).files
    assert {m["name"] for m in archive.machines} == {"web", "app", "db"}
    assert {f["machine"] for f in archive.files} == {"web", "app", "db"}
    for stored in archive.files:
        data = files[DatastoreFile("LocalDS_1", stored["path"])]
        assert hashlib.sha256(data).hexdigest() == stored["sha256"]
        assert len(data) == stored["size"]
    copied = [f for f in archive.files if f["reused_from"] is None]
    assert all(f["path"].startswith(f"stagekeeper-archives/{archive.id}/") for f in copied)
    # web and app are clones of one template: the second disk is referenced, not copied again.
    assert any(f["reused_from"] == str(archive.id) for f in archive.files)
    record = archive.machine("web")["record"]
    assert (record["cpus"], record["datastore"]) == (2, "LocalDS_0")
    assert archive.configuration_version == 1
    # The deployment keeps running: powered off for the copy, on again after.
    assert all(vm.powered_on for vm in vcenter.find_vms(deployment_id))


def test_a_second_archive_of_the_same_machines_stores_only_what_changed(runtime: Runtime, deployment_id: UUID) -> None:
    first = runtime.app.archive(archived(runtime, deployment_id))
    vm_id = runtime.app.deployment(deployment_id).machine("db")["vm_id"]
    log = DatastoreFile("LocalDS_0", f"{runtime.app.deployment(deployment_id).machine('db')['vm_name']}/vmware.log")
    storage(runtime).vm_files(vm_id)
    storage(runtime).files[log] += b"one more line\n"
    second = runtime.app.archive(archived(runtime, deployment_id))
    assert second.previous == [str(first.id)]
    copied = [f for f in second.files if f["reused_from"] is None]
    assert [(f["machine"], f["name"]) for f in copied] == [("db", "vmware.log")]
    assert second.stored_bytes() < first.stored_bytes()


def test_restore_brings_the_machines_back_as_a_running_deployment_of_the_archived_version(
    runtime: Runtime, vcenter: SimulatedVCenter, deployment_id: UUID
) -> None:
    archive_id = archived(runtime, deployment_id)
    runtime.app.undeploy(deployment_id, actor="alice")  # its MACs are free again
    runtime.catch_up()
    restore = runtime.app.restore_archive(archive_id, "test", False, actor="bob", reason="audit").value
    runtime.catch_up()
    runtime.catch_up()  # the deployment's process manager tags the adopted VMs
    done = runtime.app.archive(archive_id)
    record = done.restores[next(iter(restore.restores))]
    assert record["state"] == "restored", record["failure"]
    restored = runtime.app.deployment(UUID(record["deployment_id"]))
    assert (restored.state, restored.stage, restored.configuration_version) == ("deployed", "test", 1)
    vms = {vm.vm_id: vm for vm in vcenter.all_vms()}
    for m in restored.machines:
        vm = vms[m["vm_id"]]
        assert vm.powered_on
        assert vm.deployment_id == restored.id
        archived_nics = done.machine(m["name"])["record"]["nics"]
        assert list(vm.macs) == [n["mac"] for n in archived_nics if n["mac"]]


def test_a_corrupted_archive_file_fails_the_restore_naming_the_file(runtime: Runtime, deployment_id: UUID) -> None:
    archive = runtime.app.archive(archived(runtime, deployment_id))
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    disk = next(f for f in archive.files if f["name"].endswith("-flat.vmdk") and f["machine"] == "db")
    storage(runtime).files[DatastoreFile("LocalDS_1", disk["path"])] = b"bit rot"
    runtime.app.restore_archive(archive.id, "test", False, actor="bob")
    runtime.catch_up()
    (restore,) = runtime.app.archive(archive.id).restores.values()
    assert restore["state"] == "failed"
    assert disk["name"] in restore["failure"]
    assert "SHA-256" in restore["failure"]


def test_a_restore_over_the_live_deployments_addresses_fails_naming_the_clash(
    runtime: Runtime, deployment_id: UUID
) -> None:
    archive_id = archived(runtime, deployment_id)
    runtime.app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()
    (restore,) = runtime.app.archive(archive_id).restores.values()
    assert restore["state"] == "failed"
    assert "MAC" in restore["failure"]


def test_hold_keeps_an_expired_archive_and_retention_deletes_it_after(runtime: Runtime, deployment_id: UUID) -> None:
    archive_id = archived(runtime, deployment_id)
    runtime.app.set_archive_retention(archive_id, 1, actor="alice")
    runtime.app.hold_archive(archive_id, True, actor="legal", reason="case 42")
    later = runtime.app.archive(archive_id).created_on + timedelta(days=2)
    assert runtime.app.expire_archives(later) == []
    with pytest.raises(ConflictError):
        runtime.app.delete_archive(archive_id, actor="alice")
    runtime.app.hold_archive(archive_id, False, actor="legal")
    assert runtime.app.expire_archives(later) == [archive_id]
    runtime.catch_up()
    assert runtime.app.archive(archive_id).state == "deleted"
    assert not [f for f in storage(runtime).files if f.path.startswith(f"stagekeeper-archives/{archive_id}")]


def test_archive_commands_refuse_bad_input(runtime: Runtime, deployment_id: UUID) -> None:
    with pytest.raises(ValidationError) as error:
        runtime.app.archive_now(deployment_id, actor="a", consistency="freeze")
    assert error.value.field == "consistency"
    with pytest.raises(ValidationError) as error:
        runtime.app.archive_now(deployment_id, actor="a", retention_days=0)
    assert error.value.field == "retention_days"
    archive_id = runtime.app.archive_now(deployment_id, actor="a").value.id
    with pytest.raises(ConflictError):
        runtime.app.archive_now(deployment_id, actor="a")
    with pytest.raises(InvalidTransitionError):
        runtime.app.restore_archive(archive_id, "test", False, actor="a")  # not complete yet
