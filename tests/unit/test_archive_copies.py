"""The archive's copy pipeline (domain/processes/archive_copies.py) on an in-memory datastore: every
file recorded once with its SHA-256, one copy per content (a second copy of one content deleted),
a reference recorded only after the copy it points to, large files of a new size copied beside
their hash, no more than `parallel` small files' bytes held at once, and each machine listed while
it is made consistent but none of its files read or copied before."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar
from uuid import uuid4

from domain.archive import Archive
from domain.archive_ports import ByteSource, DatastoreFile, FileDigest
from domain.processes.archive_copies import SMALL_FILE, ArchiveCopy

T = TypeVar("T")
BIG = SMALL_FILE + 1024


class Datastores:
    """Datastore files in memory, with the timings and counts the tests check."""

    def __init__(self) -> None:
        self.files: dict[DatastoreFile, bytes] = {}
        self.lock = threading.Lock()
        self.log: list[tuple[str, str]] = []  # (operation, path) as they start
        self.small_out = 0  # small files read and not yet recorded (every small file is distinct here)
        self.most_small_out = 0

    def _note(self, operation: str, file: DatastoreFile) -> None:
        with self.lock:
            self.log.append((operation, file.path))

    def vm_file_sizes(self, vm_id: str) -> list[tuple[DatastoreFile, int]]:
        self._note("listed", DatastoreFile("LocalDS_0", vm_id))
        found = [(f, len(d)) for f, d in self.files.items() if f.path.startswith(f"{vm_id}/")]
        return sorted(found, key=lambda item: item[0].path)

    def vm_files(self, vm_id: str) -> list[DatastoreFile]:
        return [f for f, _ in self.vm_file_sizes(vm_id)]

    def register_vm(self, vmx: DatastoreFile, name: str, resource_pool: str, record: dict[str, Any]) -> str:
        raise AssertionError("an archive registers no VM")

    def attach_disks(self, vm_id: str, vmx: DatastoreFile, record: dict[str, Any]) -> None:
        raise AssertionError("an archive attaches no disk")

    def power_on(self, vm_id: str) -> None:
        raise AssertionError("the copy powers nothing on")

    def power_off(self, vm_id: str) -> None:
        raise AssertionError("the copy powers nothing off")

    def machine_record(self, vm_id: str) -> dict[str, Any]:
        return {"name": vm_id}

    def make_folder(self, folder: DatastoreFile) -> None:
        pass

    def copy_file(self, source: DatastoreFile, target: DatastoreFile) -> None:
        self._note("copy", source)
        time.sleep(0.05)  # a copy task outlasts a digest of these files
        self.files[target] = self.files[source]

    def digest(self, file: DatastoreFile) -> FileDigest:
        data = self.files[file]
        time.sleep(0.01)
        self._note("digested", file)
        return FileDigest(len(data), hashlib.sha256(data).hexdigest())

    def read_file(self, file: DatastoreFile, use: Callable[[ByteSource], T]) -> T:
        self._note("read", file)
        data = self.files[file]
        if len(data) <= SMALL_FILE:
            with self.lock:
                self.small_out += 1
                self.most_small_out = max(self.most_small_out, self.small_out)
        return use(io.BytesIO(data))

    def write_file(self, file: DatastoreFile, source: BinaryIO, size: int) -> None:
        self._note("write", file)
        source.seek(0)
        self.files[file] = source.read(size)

    def delete_folder(self, folder: DatastoreFile) -> None:
        self._note("delete", folder)
        self.files.pop(folder, None)


def run(stores: Datastores, machines: list[str], parallel: int) -> Archive:
    archive = Archive(
        service_id=uuid4(), deployment_id=uuid4(), configuration_id=uuid4(), configuration_name="p",
        configuration_version=1, stage="int", networks=[],
        machines=[{"name": m, "vm_id": m, "vm_name": m, "spec": {}, "addressing": None} for m in machines],
        consistency="power-off", tier="LocalDS_1", retention_days=None, previous=[], actor="t", reason=None,
    )  # fmt: skip
    archive.record_consistent([], "t")
    commits: list[int] = []

    def steps(current: Archive, batch: list[tuple[Callable[..., None], dict[str, Any]]]) -> Archive:
        assert current is archive  # decided on the archive as last saved
        for method, kwargs in batch:
            method(archive, **kwargs, actor="t")
            if method is Archive.record_file and kwargs["size"] <= SMALL_FILE and kwargs["reused_from"] is None:
                with stores.lock:
                    stores.small_out -= 1
        commits.append(len(batch))
        return archive

    done = ArchiveCopy(stores, steps, archive, {}, set(), lambda m, n: n.endswith(".lck"), parallel).run()
    assert sum(commits) == len(done.files) + len(machines)  # every step recorded, in batches
    return done


def source(vm: str, name: str) -> DatastoreFile:
    return DatastoreFile("LocalDS_0", f"{vm}/{name}")


def test_every_file_is_recorded_once_with_one_copy_per_content() -> None:
    stores = Datastores()
    disk = b"d" * BIG
    for vm in ("web", "app"):
        stores.files[source(vm, f"{vm}-flat.vmdk")] = disk  # one content, two machines
        stores.files[source(vm, f"{vm}.vmx")] = f"displayName = {vm}".encode()
        stores.files[source(vm, f"{vm}.nvram")] = b""  # one content
        stores.files[source(vm, f"{vm}.vmx.lck")] = b"lock"  # left out
    stores.files[source("db", "db-flat.vmdk")] = b"x" * (BIG + 1)
    archive = run(stores, ["web", "app", "db"], parallel=4)

    assert sorted((f["machine"], f["name"]) for f in archive.files) == sorted(
        [(vm, f"{vm}{suffix}") for vm in ("web", "app") for suffix in ("-flat.vmdk", ".vmx", ".nvram")]
        + [("db", "db-flat.vmdk")]
    )
    owned = {f["path"] for f in archive.files if f["reused_from"] is None}
    on_tier = {f.path for f in stores.files if f.datastore == "LocalDS_1"}
    assert on_tier == owned  # the second copy of the disk was deleted; nothing else is there
    for stored in archive.files:
        data = stores.files[DatastoreFile("LocalDS_1", stored["path"])]
        assert hashlib.sha256(data).hexdigest() == stored["sha256"]
        assert len(data) == stored["size"]
    for index, stored in enumerate(archive.files):
        if stored["reused_from"] is not None:  # recorded after the copy it points to
            owner = next(i for i, f in enumerate(archive.files) if f["path"] == stored["path"] and not f["reused_from"])
            assert owner < index
    disks = [f for f in archive.files if f["name"] in ("web-flat.vmdk", "app-flat.vmdk")]
    assert [f["reused_from"] is None for f in disks].count(True) == 1


def test_a_large_file_of_a_new_size_is_copied_beside_the_read_of_its_source() -> None:
    stores = Datastores()
    stores.files[source("db", "db-flat.vmdk")] = b"x" * BIG
    run(stores, ["db"], parallel=2)
    ops = [op for op, path in stores.log if path == "db/db-flat.vmdk"]
    assert ops.index("copy") < ops.index("digested")  # the copy did not wait for the source's SHA-256


def test_no_more_than_parallel_small_files_are_held_at_once() -> None:
    stores = Datastores()
    for vm in ("a", "b", "c"):
        for n in range(12):
            stores.files[source(vm, f"log-{n}.txt")] = f"{vm} {n}".encode() * 100
    archive = run(stores, ["a", "b", "c"], parallel=3)
    assert len(archive.files) == 36
    assert stores.small_out == 0
    assert stores.most_small_out <= 3


def test_each_machine_is_listed_while_made_consistent_and_read_and_copied_only_after() -> None:
    stores = Datastores()
    for vm in ("web", "db"):
        stores.files[source(vm, f"{vm}-flat.vmdk")] = vm.encode() * BIG
        stores.files[source(vm, f"{vm}.vmx")] = f"displayName = {vm}".encode()
    archive = Archive(
        service_id=uuid4(), deployment_id=uuid4(), configuration_id=uuid4(), configuration_name="p",
        configuration_version=1, stage="int", networks=[],
        machines=[{"name": m, "vm_id": m, "vm_name": m, "spec": {}, "addressing": None} for m in ("web", "db")],
        consistency="power-off", tier="LocalDS_1", retention_days=None, previous=[], actor="t", reason=None,
    )  # fmt: skip
    listed = {vm: threading.Event() for vm in ("web", "db")}

    def consistent(machine: dict[str, Any]) -> None:
        stores._note("powering off", DatastoreFile("LocalDS_0", machine["vm_id"]))
        assert listed[machine["name"]].wait(5)  # the listing does not wait for the power-off
        time.sleep(0.05)
        stores._note("powered off", DatastoreFile("LocalDS_0", machine["vm_id"]))

    listing = stores.vm_file_sizes

    def vm_file_sizes(vm_id: str) -> list[tuple[DatastoreFile, int]]:
        found = listing(vm_id)
        listed[vm_id].set()
        return found

    stores.vm_file_sizes = vm_file_sizes  # type: ignore[method-assign]
    batches: list[list[str]] = []

    def steps(current: Archive, batch: list[tuple[Callable[..., None], dict[str, Any]]]) -> Archive:
        for method, kwargs in batch:
            method(current, **kwargs, actor="t")
        batches.append([method.__name__ for method, _ in batch])
        return current

    first = [(Archive.record_consistent, {"powered_off": ["web", "db"]})]
    done = ArchiveCopy(stores, steps, archive, {}, set(), lambda m, n: False, 4, first, consistent).run()

    assert sorted(f["name"] for f in done.files) == ["db-flat.vmdk", "db.vmx", "web-flat.vmdk", "web.vmx"]
    assert batches[0][0] == "record_consistent"  # recorded first, once every machine is consistent
    for vm in ("web", "db"):
        ops = [op for op, path in stores.log if path.split("/")[0] == vm]
        off = ops.index("powered off")
        assert ops.index("listed") < off
        assert all(op in ("powering off", "listed") for op in ops[:off])  # nothing read or copied before
        assert {"copy", "read"} <= set(ops[off:])


def test_no_file_is_read_before_every_machines_copies_are_sent() -> None:
    """The reads (the large files' SHA-256, the small files) wait for the last machine made
    consistent: until its copies are sent they would only take the CPU from its power-off."""
    stores = Datastores()
    for vm in ("web", "db"):
        stores.files[source(vm, f"{vm}-flat.vmdk")] = vm.encode() * BIG
        stores.files[source(vm, f"{vm}.vmx")] = f"displayName = {vm}".encode()
    archive = Archive(
        service_id=uuid4(), deployment_id=uuid4(), configuration_id=uuid4(), configuration_name="p",
        configuration_version=1, stage="int", networks=[],
        machines=[{"name": m, "vm_id": m, "vm_name": m, "spec": {}, "addressing": None} for m in ("web", "db")],
        consistency="power-off", tier="LocalDS_1", retention_days=None, previous=[], actor="t", reason=None,
    )  # fmt: skip

    def consistent(machine: dict[str, Any]) -> None:
        time.sleep(0.1 if machine["name"] == "db" else 0)  # db is made consistent last
        stores._note("powered off", DatastoreFile("LocalDS_0", machine["vm_id"]))

    def steps(current: Archive, batch: list[tuple[Callable[..., None], dict[str, Any]]]) -> Archive:
        for method, kwargs in batch:
            method(current, **kwargs, actor="t")
        return current

    first = [(Archive.record_consistent, {"powered_off": ["web", "db"]})]
    done = ArchiveCopy(stores, steps, archive, {}, set(), lambda m, n: False, 4, first, consistent).run()

    assert len(done.files) == 4
    log = [(op, path) for op, path in stores.log if op in ("copy", "read", "digested", "powered off")]
    db_off = log.index(("powered off", "db"))
    assert log.index(("copy", "web/web-flat.vmdk")) < db_off  # web's copy did not wait for db
    # No read before db is consistent (its copy is sent then, just before the reads are).
    assert all(op not in ("read", "digested") for op, _ in log[:db_off])


class RestoreStores:
    """A restore's datastore side in memory: files brought back, read back, VMs registered."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.archived = files  # archived path -> bytes
        self.files: dict[DatastoreFile, bytes] = {}
        self.log: list[str] = []
        self.lock = threading.Lock()

    def note(self, what: str) -> None:
        with self.lock:
            self.log.append(what)

    def make_folder(self, folder: DatastoreFile) -> None:
        pass

    def bring(self, stored: dict[str, Any], target: DatastoreFile) -> None:
        if stored["size"] > SMALL_FILE:
            time.sleep(0.1)  # a disk's copy outlasts everything else
        self.files[target] = self.archived[stored["path"]]
        self.note(f"brought {stored['name']}")

    def digest(self, file: DatastoreFile) -> FileDigest:
        data = self.files[file]
        return FileDigest(len(data), hashlib.sha256(data).hexdigest())

    def register_vm(self, vmx: DatastoreFile, name: str, resource_pool: str, record: dict[str, Any]) -> str:
        self.note(f"registered {name}")
        return f"vm-{name}"

    def attach_disks(self, vm_id: str, vmx: DatastoreFile, record: dict[str, Any]) -> None:
        self.note(f"attached {vm_id}")


def test_a_restore_reads_ahead_once_every_machine_is_registered_while_its_disks_copy() -> None:
    """What the final write reads is read once every VM is registered, while the disks still copy
    (not when they are back, where the reads would take the CPU their checks need)."""
    from domain.processes.archive_copies import RestoreCopy

    archived: dict[str, bytes] = {}
    files: list[dict[str, Any]] = []
    machines = []
    for vm in ("web", "db"):
        for name, data in ((f"{vm}.vmx", f"displayName = {vm}".encode()), (f"{vm}-flat.vmdk", vm.encode() * BIG)):
            path = f"archive/{vm}/{name}"
            archived[path] = data
            files.append({"machine": vm, "name": name, "size": len(data), "path": path, "tier": "LocalDS_1",
                          "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
        record = {"name": vm, "datastore": "LocalDS_0", "vmx": f"{vm}.vmx", "disks": [{"file": f"{vm}-flat.vmdk"}]}
        machines.append({"name": vm, "record": record})
    stores = RestoreStores(archived)

    def ahead(vms: dict[str, str]) -> object:
        stores.note(f"read ahead {sorted(vms.items())}")
        return "reads"

    copy = RestoreCopy(
        stores, stores.bring, machines, files, {"resource_pool": "/p"},  # type: ignore[arg-type]
        {"web": "sk-r-web", "db": "sk-r-db"}, lambda vm_id: stores.note(f"on {vm_id}"), lambda ready: None, 4,
        ahead=ahead,
    )  # fmt: skip
    assert copy.run() is None
    assert copy.read_ahead == "reads"
    read = stores.log.index("read ahead [('db', 'vm-sk-r-db'), ('web', 'vm-sk-r-web')]")
    assert read < stores.log.index("brought web-flat.vmdk")  # while the disks still copied
    assert read < stores.log.index("brought db-flat.vmdk")
