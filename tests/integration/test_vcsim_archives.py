"""Archive Now and restore with the pyvmomi driver against vcsim (`-ds 2`: LocalDS_1 is the archive
tier, a real folder), on PostgreSQL: files land on LocalDS_1 with the SHA-256 recorded (checked on
disk), a restore registers the copied VMs and brings them back running at the archived version,
and a file corrupted on disk fails the restore naming it."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from pyVmomi import vim

from adapters.archive_filetier import FileTierAdapter
from adapters.runtime import Runtime
from adapters.vcenter.pyvmomi.archives import PyVmomiArchiveStorage
from domain.archive_ports import DatastoreFile
from domain.processes.archive_copies import SMALL_FILE
from scripts.vcsim_harness import Vcsim
from scripts.vcsim_harness import start as start_vcsim
from tests.support import ROOT_POOL, machine, postgres_schema, runtime_for, stages

POOL = {"cidr": "10.61.0.0/24", "gateway": "10.61.0.1", "dns": ["10.61.0.2"], "first": "10.61.0.10"}
MACHINES = [machine("web"), machine("app"), machine("db", template="tpl-rhel-9")]
DISK_REPEAT = (2 * SMALL_FILE) // 32  # a disk of two SMALL_FILEs: 32-byte SHA-256 digests repeated


@pytest.fixture(scope="module")
def vcsim2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    sim = start_vcsim(tmp_path_factory.mktemp("vcsim-ds2") / "vcsim.log", "-pg", "3", "-ds", "2")
    yield sim
    sim.stop()


@pytest.fixture
def runtime(vcsim2: Vcsim) -> Iterator[Runtime]:
    vcsim2.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim2.driver(task_timeout=10))
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def datastore_root(runtime: Runtime, name: str) -> Path:
    storage = runtime.archive_storage
    assert isinstance(storage, PyVmomiArchiveStorage)
    dc = storage._datacenter()
    return Path(next(ds.info.url for ds in dc.datastore if ds.name == name))


def deployed(runtime: Runtime) -> UUID:
    service_id = runtime.app.register_service("payroll", "", stages("int", "test"), actor="alice").value.id
    runtime.app.update_stage(service_id, "int", {"ip_pools": [POOL]}, actor="alice")
    configuration = runtime.app.create_configuration(service_id, "c", "", [{"name": "front"}], MACHINES, actor="a")
    deployment_id = runtime.app.deploy(configuration.value.id, "int", actor="alice").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed", deployment.failure
    # Give each disk real content (vcsim's disks are empty files): web and app the same bytes, each
    # above SMALL_FILE so that it is copied by a CopyDatastoreFile_Task.
    local = datastore_root(runtime, "LocalDS_0")
    for m in deployment.machines:
        seed = b"template" if m["name"] in ("web", "app") else m["name"].encode()
        (local / m["vm_name"] / f"{m['vm_name']}-flat.vmdk").write_bytes(hashlib.sha256(seed).digest() * DISK_REPEAT)
    return deployment_id


def archived(runtime: Runtime, deployment_id: UUID) -> UUID:
    archive_id = runtime.app.archive_now(deployment_id, actor="alice", reason="release 7").value.id
    runtime.catch_up()
    archive = runtime.app.archive(archive_id)
    assert archive.state == "complete", archive.failure
    return archive_id


def restored(runtime: Runtime, archive_id: UUID) -> dict[str, object]:
    runtime.app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()
    runtime.catch_up()  # the deployment's process manager tags the adopted VMs
    restores = runtime.app.archive(archive_id).restores
    return list(restores.values())[-1]


def test_archive_of_three_vms_lands_on_localds_1_with_matching_sha256_and_restores_running(runtime: Runtime) -> None:
    deployment_id = deployed(runtime)
    archive = runtime.app.archive(archived(runtime, deployment_id))
    tier = datastore_root(runtime, "LocalDS_1")
    assert {f["machine"] for f in archive.files} == {"web", "app", "db"}
    for stored in archive.files:
        data = (tier / stored["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == stored["sha256"], stored["name"]
        assert len(data) == stored["size"]
    disks = {f["machine"]: f for f in archive.files if f["name"].endswith("-flat.vmdk")}
    assert disks["web"]["size"] == 32 * DISK_REPEAT
    assert (disks["web"]["reused_from"] is None) != (disks["app"]["reused_from"] is None)  # one copy, one reference
    # Both disks were copied at once (no file of their size was on the tier); the second copy of the
    # one content was deleted: the tier holds exactly the files the archive owns.
    on_tier = {
        str(p.relative_to(tier)) for p in (tier / "stagekeeper-archives" / str(archive.id)).rglob("*") if p.is_file()
    }
    assert on_tier == {f["path"] for f in archive.files if f["reused_from"] is None}
    # The datastore's own browser sees them too.
    storage = runtime.archive_storage
    assert isinstance(storage, PyVmomiArchiveStorage)
    listed = storage.list_folder(DatastoreFile("LocalDS_1", f"stagekeeper-archives/{archive.id}/db"))
    assert {f.path.rsplit("/", 1)[-1] for f in listed} >= {disks["db"]["name"]}
    assert all(vm.powered_on for vm in runtime.vcenter.find_vms(deployment_id))  # the deployment keeps running

    runtime.app.undeploy(deployment_id, actor="alice")  # its MACs and addresses are free again
    runtime.catch_up()
    restore = restored(runtime, archive.id)
    assert restore["state"] == "restored", restore["failure"]
    deployment = runtime.app.deployment(UUID(str(restore["deployment_id"])))
    assert (deployment.state, deployment.stage, deployment.configuration_version) == ("deployed", "test", 1)
    vms = {vm.machine or "": vm for vm in runtime.vcenter.find_vms(deployment.id)}
    assert sorted(vms) == ["app", "db", "web"]
    for m in archive.machines:
        vm = vms[m["name"]]
        record = m["record"]
        assert vm.powered_on
        assert vm.resource_pool == f"{ROOT_POOL}/test-pool"
        assert (vm.cpus, vm.memory_mib) == (record["cpus"], record["memory_mib"])
        assert list(vm.macs) == [n["mac"] for n in record["nics"]]
        devices = storage.driver._vm(vm.vm_id).config.hardware.device
        backing = [getattr(d.backing, "fileName", "") for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        assert backing == [f"[LocalDS_0] {vm.name}/{vm.name}.vmdk"]
    local = datastore_root(runtime, "LocalDS_0")
    web = vms["web"].name
    assert (local / web / f"{web}-flat.vmdk").read_bytes() == hashlib.sha256(b"template").digest() * DISK_REPEAT


def test_a_file_corrupted_on_the_archive_datastore_fails_the_restore_naming_it(runtime: Runtime) -> None:
    deployment_id = deployed(runtime)
    archive = runtime.app.archive(archived(runtime, deployment_id))
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    disk = next(f for f in archive.files if f["machine"] == "db" and f["name"].endswith("-flat.vmdk"))
    path = datastore_root(runtime, "LocalDS_1") / disk["path"]
    with path.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 16)
        handle.flush()
        os.fsync(handle.fileno())
    restore = restored(runtime, archive.id)
    assert restore["state"] == "failed"
    assert disk["name"] in str(restore["failure"])
    assert "SHA-256" in str(restore["failure"])


def file_events(runtime: Runtime, archive_id: UUID) -> list[tuple[str, str]]:
    return [
        (event["machine"], event["name"])
        for n in runtime.app.select_notifications(1, 100_000, topics=("stagekeeper:Archive.FileStored",))
        if n.originator_id == archive_id
        for event in [runtime.app.decode(n).__dict__]
    ]


def test_a_worker_killed_mid_archive_leaves_one_complete_copy_after_the_next_one_resumes(
    runtime: Runtime, vcsim2: Vcsim, tmp_path: Path
) -> None:
    deployment_id = deployed(runtime)
    vcsim2.control("method-delay", method="CopyDatastoreFile_Task", ms=400)
    database_url = runtime.settings.database_url
    env = {
        **os.environ,
        "STAGEKEEPER_DATABASE_URL": database_url,
        "STAGEKEEPER_VCENTER_DRIVER": "pyvmomi",
        "STAGEKEEPER_VCENTER_URL": vcsim2.sdk,
        "STAGEKEEPER_VCENTER_USER": "user",
        "STAGEKEEPER_VCENTER_PASSWORD": "pass",
        "STAGEKEEPER_POLL_SECONDS": "0.05",
    }
    out = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env, stdout=out, stderr=out)
    try:
        archive_id = runtime.app.archive_now(deployment_id, actor="alice").value.id
        deadline = time.monotonic() + 60
        while len(file_events(runtime, archive_id)) < 3:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
        vcsim2.control("method-delay", method="CopyDatastoreFile_Task", ms=0)
    assert runtime.app.archive(archive_id).state == "archiving"  # stopped half way
    runtime.catch_up()  # the next worker: this process
    archive = runtime.app.archive(archive_id)
    assert archive.state == "complete", archive.failure
    events = file_events(runtime, archive_id)
    assert len(events) == len(set(events))  # every file recorded once
    assert {m for m, _ in events} == {"web", "app", "db"}
    tier = datastore_root(runtime, "LocalDS_1")
    for stored in archive.files:
        assert hashlib.sha256((tier / stored["path"]).read_bytes()).hexdigest() == stored["sha256"]
    assert all(vm.powered_on for vm in runtime.vcenter.find_vms(deployment_id))


def test_moved_to_the_file_tier_it_frees_localds_1_and_restores_running_from_there(
    vcsim2: Vcsim, tmp_path: Path
) -> None:
    vcsim2.control("reset")
    tier = f"file:{tmp_path / 'cold'}"
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim2.driver(task_timeout=10), archive_tiers=f"LocalDS_1,{tier}")
        try:
            runtime.app.import_templates(None, True, actor="admin")
            deployment_id = deployed(runtime)
            archive_id = archived(runtime, deployment_id)
            runtime.app.move_archive(archive_id, tier, actor="alice")
            runtime.catch_up()
            archive = runtime.app.archive(archive_id)
            assert (archive.tier, archive.move_failure, archive.releasing) == (tier, None, [])
            on_ds = datastore_root(runtime, "LocalDS_1") / "stagekeeper-archives" / str(archive_id)
            assert not [p for p in on_ds.rglob("*") if p.is_file()]  # freed after the move was recorded
            logical, stored = runtime.file_tiers[tier].stats()
            assert stored < logical
            runtime.app.undeploy(deployment_id, actor="alice")
            runtime.catch_up()
            restore = restored(runtime, archive_id)
            assert restore["state"] == "restored", restore["failure"]
            deployment = runtime.app.deployment(UUID(str(restore["deployment_id"])))
            assert (deployment.state, deployment.configuration_version) == ("deployed", 1)
            vms = runtime.vcenter.find_vms(deployment.id)
            assert len(vms) == 3
            assert all(vm.powered_on for vm in vms)
            web = next(vm for vm in vms if vm.machine == "web")
            local = datastore_root(runtime, "LocalDS_0")
            assert (local / web.name / f"{web.name}-flat.vmdk").read_bytes() == hashlib.sha256(
                b"template"
            ).digest() * DISK_REPEAT
        finally:
            runtime.close()


def moved_events(runtime: Runtime, archive_id: UUID) -> list[tuple[str, str, str]]:
    return [
        (event["tier"], event["machine"], event["name"])
        for n in runtime.app.select_notifications(1, 100_000, topics=("stagekeeper:Archive.FileMoved",))
        if n.originator_id == archive_id
        for event in [runtime.app.decode(n).__dict__]
    ]


def assert_one_complete_copy(runtime: Runtime, archive_id: UUID) -> None:
    """Every file the archive records is on its tier with its SHA-256, each recorded once."""
    archive = runtime.app.archive(archive_id)
    keys = [(f["machine"], f["name"]) for f in archive.files]
    assert len(keys) == len(set(keys)) == 15
    for stored in archive.files:
        assert stored["tier"] == archive.tier
        if archive.tier.startswith("file:"):
            sink = io.BytesIO()
            runtime.file_tiers[archive.tier].get(stored["manifest"], sink)  # checks each chunk too
            digest = hashlib.sha256(sink.getvalue()).hexdigest()
        else:
            digest = hashlib.sha256((datastore_root(runtime, archive.tier) / stored["path"]).read_bytes()).hexdigest()
        assert digest == stored["sha256"], stored


def test_a_worker_killed_mid_move_each_way_leaves_one_complete_copy_after_the_next_one_resumes(
    vcsim2: Vcsim, tmp_path: Path
) -> None:
    """A real worker process (api.cli worker) moves the archive LocalDS_1 -> file tier -> LocalDS_1
    and is killed with SIGKILL half way each time (vcsim slowed down per file: `Fetch` read by each
    file's HTTP read on the way to the file tier, `MakeDirectory` made for each file on the way
    back); at the kill the archive still records its complete copy on the old tier, and the next
    worker (this process) finishes the move with each file recorded once and checkable."""
    vcsim2.control("reset")
    tier = f"file:{tmp_path / 'cold'}"
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim2.driver(task_timeout=10), archive_tiers=f"LocalDS_1,{tier}")
        try:
            runtime.app.import_templates(None, True, actor="admin")
            archive_id = archived(runtime, deployed(runtime))
            env = {
                **os.environ, "STAGEKEEPER_DATABASE_URL": url, "STAGEKEEPER_VCENTER_DRIVER": "pyvmomi",
                "STAGEKEEPER_VCENTER_URL": vcsim2.sdk, "STAGEKEEPER_VCENTER_USER": "user",
                "STAGEKEEPER_VCENTER_PASSWORD": "pass", "STAGEKEEPER_POLL_SECONDS": "0.05",
                "STAGEKEEPER_ARCHIVE_TIERS": f"LocalDS_1,{tier}",
            }  # fmt: skip
            for to, slow in ((tier, "Fetch"), ("LocalDS_1", "MakeDirectory")):
                before = len(moved_events(runtime, archive_id))
                log = tmp_path / f"worker-{slow}.log"
                with log.open("wb") as out:
                    worker = subprocess.Popen(
                        [sys.executable, "-m", "api.cli", "worker"], env=env, stdout=out, stderr=out
                    )
                try:
                    vcsim2.control("method-delay", method=slow, ms=150)
                    runtime.app.move_archive(archive_id, to, actor="alice")
                    deadline = time.monotonic() + 90
                    while len(moved_events(runtime, archive_id)) - before < 2:
                        assert time.monotonic() < deadline, log.read_text()[-3000:]
                        assert worker.poll() is None, log.read_text()[-3000:]
                        time.sleep(0.02)
                    os.kill(worker.pid, signal.SIGKILL)
                    worker.wait(10)
                finally:
                    if worker.poll() is None:
                        worker.kill()
                        worker.wait(10)
                    vcsim2.control("method-delay", method=slow, ms=0)
                archive = runtime.app.archive(archive_id)
                assert archive.moving is not None  # stopped half way
                assert archive.moving["to"] == to
                assert 2 <= len(archive.moving["moved"]) < 15
                assert_one_complete_copy(runtime, archive_id)  # still the old tier's, complete

                runtime.catch_up()  # the next worker: this process
                archive = runtime.app.archive(archive_id)
                assert (archive.tier, archive.moving, archive.move_failure, archive.releasing) == (to, None, None, [])
                moves = moved_events(runtime, archive_id)[before:]
                assert len(moves) == len(set(moves)) == 15  # every file moved and recorded once
                assert_one_complete_copy(runtime, archive_id)
            # Back on LocalDS_1: the file tier holds no live put of the archive any more.
            assert runtime.file_tiers[tier].stats()[0] == 0
            runtime.app.undeploy(runtime.app.archive(archive_id).deployment_id, actor="alice")
            runtime.catch_up()
            restore = restored(runtime, archive_id)
            assert restore["state"] == "restored", restore["failure"]
        finally:
            runtime.close()


def test_a_failed_move_to_the_file_tier_frees_its_puts_even_when_the_worker_dies_freeing_them(
    vcsim2: Vcsim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A move that fails after several files were put on the file tier (the last file reads back
    with another SHA-256) frees those puts without any retry: MoveFailed records them to free, then
    SourcesReleased. A worker that dies freeing them (after the first release) leaves them recorded
    to free, and the next one frees the rest; the archive stays complete on LocalDS_1 and a later
    move there succeeds."""
    vcsim2.control("reset")
    tier = f"file:{tmp_path / 'cold'}"
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim2.driver(task_timeout=10), archive_tiers=f"LocalDS_1,{tier}")
        try:
            runtime.app.import_templates(None, True, actor="admin")
            archive_id = archived(runtime, deployed(runtime))
            stored_files = runtime.app.archive(archive_id).files
            last = stored_files[-1]
            first_bad = next(i for i, f in enumerate(stored_files) if f["path"] == last["path"])
            assert first_bad >= 2  # (web's disk is app's: one file on LocalDS_1)
            on_disk = datastore_root(runtime, "LocalDS_1") / last["path"]
            good = on_disk.read_bytes()
            on_disk.write_bytes(good + b"rot")
            files = runtime.file_tiers[tier]
            assert isinstance(files, FileTierAdapter)
            real_release = type(files).release
            calls: list[str] = []

            def dies_after_one(self: object, manifest: object) -> None:
                calls.append(str(manifest))
                if len(calls) == 3:  # 1: the bad put itself, 2: the first recorded put; then killed
                    raise KeyboardInterrupt("worker killed while freeing")
                real_release(self, manifest)  # type: ignore[arg-type]

            monkeypatch.setattr(type(files), "release", dies_after_one)
            runtime.app.move_archive(archive_id, tier, actor="alice")
            with pytest.raises(KeyboardInterrupt):
                runtime.catch_up()
            archive = runtime.app.archive(archive_id)
            assert (archive.tier, archive.moving) == ("LocalDS_1", None)
            assert archive.move_failure is not None
            assert stored_files[first_bad]["name"] in archive.move_failure
            assert len(archive.releasing) == first_bad  # the puts the move recorded, still to free
            assert files.stats()[0] > 0
            monkeypatch.setattr(type(files), "release", real_release)

            runtime.catch_up()  # the next worker
            archive = runtime.app.archive(archive_id)
            assert archive.releasing == []
            assert files.stats()[0] == 0  # no live put left on the tier the move never reached
            files.tier.collect()
            assert files.stats() == (0, 0)  # and no chunk either once collected
            on_disk.write_bytes(good)
            assert_one_complete_copy(runtime, archive_id)
            runtime.app.move_archive(archive_id, tier, actor="alice")
            runtime.catch_up()
            archive = runtime.app.archive(archive_id)
            assert (archive.tier, archive.move_failure, archive.releasing) == (tier, None, [])
            assert_one_complete_copy(runtime, archive_id)
        finally:
            runtime.close()


def test_a_put_left_unrecorded_by_a_killed_worker_is_freed_when_the_redone_move_fails(
    vcsim2: Vcsim, tmp_path: Path
) -> None:
    """A worker killed after its put of a file committed but before FileMoved leaves a put only its
    key names; the next worker redoes the file, and when that redo fails before putting (the source
    cannot be read), the move fails and drops the put under that key: nothing left on the tier."""
    vcsim2.control("reset")
    tier = f"file:{tmp_path / 'cold'}"
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim2.driver(task_timeout=10), archive_tiers=f"LocalDS_1,{tier}")
        try:
            runtime.app.import_templates(None, True, actor="admin")
            archive_id = archived(runtime, deployed(runtime))
            stored_files = runtime.app.archive(archive_id).files
            first = next(f for f in stored_files if f["size"] > 0)  # (the files before it are freed by MoveFailed)
            on_disk = datastore_root(runtime, "LocalDS_1") / first["path"]
            files = runtime.file_tiers[tier]
            name = f"{first['machine']}/{first['name']}"
            files.put(name, io.BytesIO(on_disk.read_bytes()), f"{archive_id}/{name}")  # the killed worker's
            assert files.stats()[0] == first["size"] > 0
            good = on_disk.read_bytes()
            on_disk.unlink()
            runtime.app.move_archive(archive_id, tier, actor="alice")
            runtime.catch_up()
            archive = runtime.app.archive(archive_id)
            assert (archive.tier, archive.moving, archive.releasing) == ("LocalDS_1", None, [])
            assert archive.move_failure is not None
            assert first["name"] in archive.move_failure
            assert files.stats()[0] == 0
            on_disk.write_bytes(good)
            assert_one_complete_copy(runtime, archive_id)
        finally:
            runtime.close()
