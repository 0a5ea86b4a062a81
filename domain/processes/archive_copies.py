"""The file work of Archive Now and of a restore: every file of every machine in one pipeline.

Archive (`ArchiveCopy`): each machine is made consistent (powered off or snapshotted) while its
folder is listed and its folder on the tier made; its files are read and copied only once it is
consistent, and read only once every machine's copies are sent (the reads would take the CPU from
the last machines' power-off and listing, on the copies' path). The machines' records are read and
the first events written only once every machine is consistent and listed (the listings are on the
copies' path, the records on no one's). Each file not
stored yet is hashed (SHA-256) and copied to the tier, and checked there before FileStored:
- a small file (up to SMALL_FILE) is read once through vCenter's HTTP file access, hashed as it
  arrives and, unless its content is on the tier already, written to the tier the same way (a
  copy task costs vCenter more than such a file);
- a larger file is copied with CopyDatastoreFile_Task. When no file of its size is on the tier
  yet, nothing there can have its content, so the copy starts at once, beside the read of its
  source; when one is, the file is hashed first and referenced instead of copied if the tier has
  its content (archiving the same machines again copies only what changed). Two files of one
  content in one archive may both be copied; the later one's copy is deleted, a reference kept.
Every copy is read back on the tier and compared with its source's SHA-256 before FileStored is
recorded (copied again, at most three times), and a reference is recorded only after the file it
points to. vCenter tasks and file reads run in two lanes of `parallel` (archive_lanes.py); the
events of each batch of finished steps are recorded in one commit from the calling thread.

Restore (`RestoreCopy`): each machine's folder, then its files copied (or staged from a file tier;
small ones through the file access) and read back against the archived SHA-256. A machine whose
small files (the .vmx, .nvram, disk descriptors, logs) are all back and checked is registered and
tagged as its machine of the restored deployment while its disks still copy; once every file of it
is back its disks are attached (while the last files are checked), and once every file is checked
it is powered on (unless fenced) and recorded, while the others still copy.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

from domain.archive import Archive, archive_folder
from domain.archive_ports import (
    ArchiveFileCorruptedError,
    ArchiveStorage,
    ByteSource,
    DatastoreFile,
    FileDigest,
    StreamingFiles,
)
from domain.errors import VCenterFaultError
from domain.processes.archive_lanes import LanePools, Lanes, Then

SMALL_FILE = 1 << 20  # files up to this size go through vCenter's file access, not a copy task
# Records steps on the archive in one commit, decided on the archive as last saved:
# steps(archive, [(Archive.method, kwargs), ...]) -> the archive as saved.
Steps = Callable[[Archive, list[tuple[Callable[..., None], dict[str, Any]]]], Archive]
COPY_ATTEMPTS = 3


@dataclass
class _File:
    machine: str
    name: str
    source: DatastoreFile
    target: DatastoreFile
    listed_size: int
    digest: FileDigest | None = None
    copying: bool = False  # a copy is under way
    copied: bool = False
    owner: bool | None = None  # this file's copy is the one the archive keeps (None: not known yet)
    attempts: int = 0
    data: bytes | None = None  # a small file's bytes, read with its SHA-256 (written by HTTP, not a task)
    holds_slot: bool = False  # one of the `parallel` small files whose bytes may be held at once


class ArchiveCopy:
    """One run of an archive's records and file copies; `run` returns the archive as last recorded."""

    def __init__(
        self,
        storage: ArchiveStorage,
        steps: Steps,
        archive: Archive,
        known: dict[str, tuple[str, str]],
        known_sizes: set[int],
        skip: Callable[[str, str], bool],
        parallel: int | LanePools,
        first: list[tuple[Callable[..., None], dict[str, Any]]] | None = None,
        consistent: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        self.storage = storage
        self.steps = steps
        # Steps to record in the next commit; `first` (ConsistencyReached) goes into the first one.
        self.ready: list[tuple[Callable[..., None], dict[str, Any]]] = list(first or [])
        # Makes one machine consistent (power-off or snapshot) before its folder is listed; None:
        # recorded consistent already. Nothing is recorded before every machine is listed.
        self.consistent = consistent
        self.unlisted = len(archive.machines)  # machines not both consistent and listed yet
        self.listings: dict[str, list[tuple[DatastoreFile, int]]] = {}  # listed, not consistent yet
        self.unconsistent: set[str] = set() if consistent is None else {m["name"] for m in archive.machines}
        self.archive = archive  # as last saved; touched by the recording thread while a write is in flight
        self.recording = False  # a write of steps is in flight
        self.unsaved: list[_File] = []  # files whose steps are ready, not saved yet (they hold their slots)
        self.stored_before = {(f["machine"], f["name"]) for f in archive.files}  # by a worker before this run
        self.known = known  # SHA-256 -> (archive id, path) of a content recorded on the tier
        self.known_sizes = known_sizes
        self.skip = skip  # (machine, file name) -> not part of the copy
        self.parallel = parallel
        self.unrecorded: set[str] = set()  # SHA-256s whose owning copy is not recorded yet
        self.waiting: dict[str, list[_File]] = {}  # references waiting for their owner's record
        self.small: deque[_File] = deque()  # small files not read yet
        self.unhashed: list[_File] = []  # large files to hash once every machine's copies are sent
        self.lanes = Lanes(parallel)
        self.small_slots = self.lanes.parallel  # at most this many small files' bytes held at once
        self.folders: set[str] = set()  # machines whose folder on the tier is made
        self.parked: dict[str, list[_File]] = {}  # copies waiting for their machine's folder
        self.checking = 0  # copies being read back on the tier

    def run(self) -> Archive:
        """Each machine made consistent (a task) while its folder is listed (a read: that lane is
        idle until the listings) and its folder on the tier made: its copies wait for all three (on
        the critical path, so nothing else is started before them); the machines' records and the
        first write once every machine is consistent and listed."""
        with self.lanes:
            for machine in self.archive.machines:
                folder = DatastoreFile(self.archive.tier, archive_folder(self.archive.id, machine["name"]))
                if self.consistent is not None:
                    make = partial(self.consistent, machine)
                    self.lanes.task(make, partial(self._made_consistent, machine["name"]))
                self.lanes.read(partial(self._list, machine), partial(self._listed, machine["name"]))
                self.lanes.task(partial(self.storage.make_folder, folder), partial(self._folder_made, machine["name"]))
            if not self.archive.machines:
                self._commit()
            self.lanes.run(after=self._commit)
        return self.archive

    def _read_records(self) -> None:
        for machine in self.archive.machines:
            if machine["record"] is None:
                self.lanes.task(
                    partial(self.storage.machine_record, machine["vm_id"]), partial(self._recorded, machine["name"])
                )

    def _commit(self) -> None:
        """The steps finished since the last write, in one write, unless one is in flight (or a
        machine is not listed yet: its consistency would not be recorded yet). Near the end, when
        only checks of copies on the tier are under way, the steps wait for them: one write then
        records the rest, rather than the last one waiting for a write that is still in flight."""
        near_end = not self.small and 0 < self.lanes.pending() == self.checking
        if self.ready and not self.recording and self.unlisted == 0 and not near_end:
            steps, self.ready, self.recording = self.ready, [], True
            files, self.unsaved = self.unsaved, []
            self.lanes.record(partial(self.steps, self.archive, steps), partial(self._saved, files))

    def _saved(self, files: list[_File], done: Future[Any]) -> None:
        self.recording = False
        self.archive = done.result()
        for file in files:  # their steps are saved: their slots go to the next small files
            self._release(file)

    def _recorded(self, machine: str, done: Future[Any]) -> None:
        self.ready.append((Archive.record_machine, {"machine": machine, "record": done.result()}))

    def _list(self, machine: dict[str, Any]) -> list[tuple[DatastoreFile, int]]:
        """The machine's files, listed while it is made consistent: what power-off or a snapshot
        changes in its folder is what the copy leaves out anyway (locks, swap, memory, the snapshot's
        own files: `skip`); every file's bytes are read and copied after, and its size is the one
        read then (the listed one only sorts the files: a small file found larger goes by a task)."""
        return [
            (source, size)
            for source, size in self.storage.vm_file_sizes(machine["vm_id"])
            if not self.skip(machine["name"], _name(source))
            and (machine["name"], _name(source)) not in self.stored_before
        ]

    def _made_consistent(self, machine: str, done: Future[Any]) -> None:
        done.result()
        self.unconsistent.discard(machine)
        if machine in self.listings:
            self._start(machine, self.listings.pop(machine))

    def _folder_made(self, machine: str, done: Future[Any]) -> None:
        done.result()
        self.folders.add(machine)
        for file in self.parked.pop(machine, []):
            self._copy(file)

    def _listed(self, machine: str, done: Future[Any]) -> None:
        listing: list[tuple[DatastoreFile, int]] = done.result()
        if machine in self.unconsistent:
            self.listings[machine] = listing  # its copies wait for its consistency
            return
        self._start(machine, listing)

    def _start(self, machine: str, listing: list[tuple[DatastoreFile, int]]) -> None:
        """The machine is consistent and listed: its copies start; the reads (the large files'
        SHA-256, the small files) once every machine's copies are sent: until then they would take
        the CPU from the last machines' power-off, listing and copies, which end the archive."""
        self.unlisted -= 1
        for source, size in sorted(listing, key=lambda item: -item[1]):  # the longest copies start first
            file = _File(machine, _name(source), source, self._target(machine, source), size)
            if file.listed_size <= SMALL_FILE:
                self.small.append(file)
                continue
            if file.listed_size not in self.known_sizes:
                self._copy(file)  # no file of its size on the tier: none it could be referenced to
            self.unhashed.append(file)
        if self.unlisted == 0:
            for file in self.unhashed:
                self.lanes.read(partial(self.storage.digest, file.source), partial(self._digested, file))
            self.unhashed = []
            self._read_small()
            self._read_records()  # after the listings and their copies: the records are on no one's path

    def _read_small(self) -> None:
        if self.unlisted > 0:
            return  # once every machine's copies are sent (see _start)
        while self.small and self.small_slots > 0:
            file = self.small.popleft()
            self.small_slots -= 1
            file.holds_slot = True
            self.lanes.read(partial(fetch_small, self.storage, file.source), partial(self._fetched, file))

    def _release(self, file: _File) -> None:
        """The file's bytes are not needed any more: the next small file may be read."""
        file.data = None
        if file.holds_slot:
            file.holds_slot = False
            self.small_slots += 1
            self._read_small()

    def _target(self, machine: str, source: DatastoreFile) -> DatastoreFile:
        return DatastoreFile(self.archive.tier, f"{archive_folder(self.archive.id, machine)}/{_name(source)}")

    def _fetched(self, file: _File, done: Future[Any]) -> None:
        fetched: tuple[bytes, FileDigest] | None = done.result()
        if fetched is None:  # larger than listed: hashed, then copied by a task
            self._release(file)
            file.listed_size = SMALL_FILE + 1
            self.lanes.read(partial(self.storage.digest, file.source), partial(self._digested, file))
            return
        file.data, digest = fetched
        self._hashed(file, digest)

    def _copy(self, file: _File, pause: float = 0) -> None:
        if file.machine not in self.folders:
            file.copying = True  # started once the folder is there
            self.parked.setdefault(file.machine, []).append(file)
            return

        def copy() -> None:
            time.sleep(pause)
            if file.data is None:
                self.storage.copy_file(file.source, file.target)
            else:
                write_small(self.storage, file.target, file.data)

        file.copying = True
        if file.data is None:
            self.lanes.task(copy, partial(self._copied, file))
        else:
            self.lanes.read(copy, partial(self._copied, file))

    def _digested(self, file: _File, done: Future[Any]) -> None:
        self._hashed(file, done.result())

    def _hashed(self, file: _File, digest: FileDigest) -> None:
        file.digest = digest
        here = (str(self.archive.id), file.target.path)
        file.owner = self.known.setdefault(digest.sha256, here) == here
        if file.owner:
            self.unrecorded.add(digest.sha256)
            if file.copied:
                self._check(file)
            elif not file.copying:
                self._copy(file)
            return
        self._release(file)
        if file.copied:  # copied before its content turned up elsewhere: only the reference stays
            self._drop_copy(file)
        if digest.sha256 in self.unrecorded:
            self.waiting.setdefault(digest.sha256, []).append(file)
        else:
            self._record(file)

    def _copied(self, file: _File, done: Future[Any]) -> None:
        file.copying = False
        done.result()
        file.copied = True
        if file.owner is True:
            self._check(file)
        elif file.owner is False:
            self._drop_copy(file)

    def _drop_copy(self, file: _File) -> None:
        self.lanes.task(partial(self.storage.delete_folder, file.target), lambda done: done.result())

    def _check(self, file: _File) -> None:
        self.checking += 1
        self.lanes.read(partial(self.storage.digest, file.target), partial(self._checked, file))

    def _checked(self, file: _File, done: Future[Any]) -> None:
        self.checking -= 1
        assert file.digest is not None
        if done.result().sha256 == file.digest.sha256:
            self._record(file)
            self.unrecorded.discard(file.digest.sha256)
            for waiting in self.waiting.pop(file.digest.sha256, []):
                self._record(waiting)
            return
        # A copy a killed worker left running may still land over this one (seen on vcsim under
        # load): copied again after a pause, and never recorded unless it reads back right.
        file.attempts += 1
        if file.attempts >= COPY_ATTEMPTS:
            raise VCenterFaultError(
                f"{file.target.path}: the copy on {self.archive.tier} does not match its source's SHA-256"
            )
        file.copied = False
        self._copy(file, pause=0.5 * file.attempts)

    def _record(self, file: _File) -> None:
        assert file.digest is not None
        file.data = None  # written and checked: the bytes are not needed any more
        self.unsaved.append(file)  # its slot is freed once its step is saved
        reused_from, path = (None, file.target.path) if file.owner else self.known[file.digest.sha256]
        self.ready.append((Archive.record_file, {
            "machine": file.machine, "name": file.name, "size": file.digest.size, "sha256": file.digest.sha256,
            "tier": self.archive.tier, "path": path, "reused_from": reused_from,
        }))  # fmt: skip


def _name(file: DatastoreFile) -> str:
    return file.path.rsplit("/", 1)[-1]


def fetch_small(files: StreamingFiles, file: DatastoreFile, limit: int = SMALL_FILE) -> tuple[bytes, FileDigest] | None:
    """A small file's bytes and digest, read once through vCenter's file access (None: over `limit`)."""

    def read(stream: ByteSource) -> bytes | None:
        data = bytearray()
        while len(data) <= limit:
            chunk = stream.read(limit + 1 - len(data))
            if not chunk:
                return bytes(data)
            data += chunk
        return None

    data = files.read_file(file, read)
    return None if data is None else (data, FileDigest(len(data), hashlib.sha256(data).hexdigest()))


def write_small(files: StreamingFiles, target: DatastoreFile, data: bytes) -> None:
    files.write_file(target, io.BytesIO(data), len(data))


class RestoreMismatchError(Exception):
    """A file read back during a restore does not have the SHA-256 the archive recorded."""


Bring = Callable[[dict[str, Any], DatastoreFile], None]  # an archived file onto a datastore (TierMoves.bring)


class RestoreCopy:
    """One run of a restore's copies, checks and registrations. `restored([(machine, vm_id), ...])`
    records the machines of a batch of finished steps in one commit, from the calling thread; `run`
    returns the first failure (None: all came back). A machine that fails stops there; the others
    go on. `tag(vm_id, machine)` tags a registered VM as its machine of the restored deployment."""

    def __init__(
        self,
        storage: ArchiveStorage,
        bring: Bring,
        machines: list[dict[str, Any]],
        files: list[dict[str, Any]],
        restore: dict[str, Any],
        vm_names: dict[str, str],
        power_on: Callable[[str], object] | None,
        restored: Callable[[list[tuple[str, str]]], None],
        parallel: int | LanePools,
        tag: Callable[[str, str], None] = lambda vm_id, machine: None,
        ahead: Callable[[dict[str, str]], object] | None = None,
    ) -> None:
        self.storage = storage
        self.bring = bring
        self.machines = machines
        self.files = files
        self.restore = restore
        self.vm_names = vm_names  # machine -> restored VM name
        self.power_on = power_on  # None: registered powered off (a fenced restore)
        self.restored = restored
        self.tag = tag
        self.lanes = Lanes(parallel)
        self.ready: list[tuple[str, str]] = []  # (machine, VM id) restored, to record in the next commit
        self.recording = False  # a write of restored machines is in flight
        self.left: dict[str, int] = {}  # machine -> files not back and checked yet
        self.uncopied: dict[str, int] = {}  # machine -> files not back yet (their check aside)
        self.attaching: set[str] = set()  # machines whose disks' attachment started
        self.attached: set[str] = set()  # machines whose disks are attached
        self.small_left: dict[str, int] = {}  # machine -> files up to SMALL_FILE not back yet
        self.registering: set[str] = set()  # machines whose registration started
        self.registered: dict[str, str] = {}  # machine -> VM id, registered and tagged
        self.finishing: set[str] = set()  # machines being powered on / recorded
        self.failure: str | None = None
        self.failed: set[str] = set()
        # Once every machine is registered: `ahead({machine: VM id})` on the recording thread (free
        # then: see _commit), what the final write reads, read while the disks copy.
        self.ahead = ahead
        self.read_ahead: object = None

    def run(self) -> str | None:
        """The first failure (None: all came back). With every machine back, the last of them are
        left in `ready` unrecorded: the caller records them in the restore's own final write."""
        with self.lanes:
            for machine in self.machines:
                folder = DatastoreFile(machine["record"]["datastore"], self.vm_names[machine["name"]])
                self.lanes.task(partial(self.storage.make_folder, folder), partial(self._folder_made, machine))
            self.lanes.run(after=self._commit)
        return self.failure

    def _commit(self) -> None:
        """The machines restored since the last write, in one write, unless one is in flight, or
        every file is back (only checks, disks, power-on are left: the machines restored meanwhile
        go into the restore's own final write (see `run`), which then need not wait for a write of
        them still in flight)."""
        copied = len(self.left) == len(self.machines) and not any(self.uncopied.values())
        if self.ready and not self.recording and not (self.failure is None and copied):
            ready, self.ready, self.recording = self.ready, [], True
            self.lanes.record(partial(self.restored, ready), self._saved)
        if self.ahead is not None and self.failure is None and len(self.registered) == len(self.machines):
            # As soon as every machine is registered (their small files are back, their disks still
            # copy): the recording thread is free then, and so is the CPU the disks' checks need at
            # the end. A claim or the service changed since fails the final write's version check.
            read, self.ahead = self.ahead, None  # once
            self.lanes.record(partial(read, dict(self.registered)), self._read_ahead)

    def _read_ahead(self, done: Future[Any]) -> None:
        self.read_ahead = done.result()

    def _saved(self, done: Future[Any]) -> None:
        self.recording = False
        done.result()

    def _guard(self, machine: dict[str, Any], then: Callable[[dict[str, Any], Future[Any]], None]) -> Then:
        """The continuation, unless the machine failed already; a fault fails the machine."""

        def guarded(done: Future[Any]) -> None:
            if machine["name"] in self.failed:
                return
            try:
                then(machine, done)
            except (VCenterFaultError, RestoreMismatchError, ArchiveFileCorruptedError) as fault:
                self._fail(machine, fault)

        return guarded

    def _fail(self, machine: dict[str, Any], fault: Exception) -> None:
        self.failed.add(machine["name"])
        message = fault.message if isinstance(fault, VCenterFaultError) else str(fault)
        self.failure = self.failure or message

    def _renamed(self, machine: dict[str, Any], name: str) -> str:
        old, new = machine["record"]["name"], self.vm_names[machine["name"]]
        return new + name[len(old) :] if name.startswith(old) else name

    def _folder_made(self, machine: dict[str, Any], done: Future[Any]) -> None:
        try:
            done.result()
        except VCenterFaultError as fault:
            self._fail(machine, fault)
            return
        # Its folder is there: all its files at once, the largest first (the copies of each machine
        # start as soon as its own folder is made).
        mine = sorted((f for f in self.files if f["machine"] == machine["name"]), key=lambda f: -int(f["size"]))
        self.left[machine["name"]] = self.uncopied[machine["name"]] = len(mine)
        self.small_left[machine["name"]] = len([f for f in mine if int(f["size"]) <= SMALL_FILE])
        for stored in mine:
            name = f"{self.vm_names[machine['name']]}/{self._renamed(machine, stored['name'])}"
            target = DatastoreFile(machine["record"]["datastore"], name)
            lane = self.lanes.read if int(stored["size"]) <= SMALL_FILE else self.lanes.task  # see TierMoves.bring
            lane(partial(self.bring, stored, target), self._guard(machine, partial(self._brought, stored, target)))
        self._progress(machine)

    def _brought(
        self, stored: dict[str, Any], target: DatastoreFile, machine: dict[str, Any], done: Future[Any]
    ) -> None:
        done.result()
        self.lanes.read(partial(self.storage.digest, target), self._guard(machine, partial(self._checked, stored)))
        self.uncopied[machine["name"]] -= 1
        self._progress(machine)

    def _checked(self, stored: dict[str, Any], machine: dict[str, Any], done: Future[Any]) -> None:
        digest: FileDigest = done.result()
        if digest.sha256 != stored["sha256"]:
            raise RestoreMismatchError(
                f"file {stored['name']} of machine '{machine['name']}' ({stored['tier']}: {stored['path']}) "
                f"reads back with SHA-256 {digest.sha256}, not the archived {stored['sha256']}"
            )
        self.left[machine["name"]] -= 1
        if int(stored["size"]) <= SMALL_FILE:
            self.small_left[machine["name"]] -= 1
        self._progress(machine)

    def _progress(self, machine: dict[str, Any]) -> None:
        """Register once the machine's small files are back and checked; attach its disks once every
        file is back (while the last ones are checked); power on and record once all are checked."""
        name = machine["name"]
        if self.small_left[name] == 0 and name not in self.registering:
            self.registering.add(name)
            self._register(machine)
        if name not in self.registered:
            return
        if self.uncopied[name] == 0 and name not in self.attaching:
            self.attaching.add(name)
            vmx, record = self._registration(machine)
            attach = partial(self.storage.attach_disks, self.registered[name], vmx, record)
            self.lanes.task(attach, self._guard(machine, self._attached))
        if self.left[name] == 0 and name in self.attached and name not in self.finishing:
            self.finishing.add(name)
            vm_id = self.registered[name]
            if self.power_on is None:  # fenced: on once its NICs are on the fence
                self.ready.append((name, vm_id))
            else:
                self.lanes.task(partial(self.power_on, vm_id), self._guard(machine, partial(self._on, vm_id)))

    def _attached(self, machine: dict[str, Any], done: Future[Any]) -> None:
        done.result()
        self.attached.add(machine["name"])
        self._progress(machine)

    def _registration(self, machine: dict[str, Any]) -> tuple[DatastoreFile, dict[str, Any]]:
        """The restored VM's .vmx and its record, the files renamed after the restored VM."""
        record = machine["record"]
        renamed = {**record, "disks": [{**d, "file": self._renamed(machine, d["file"])} for d in record["disks"]]}
        vm_name = self.vm_names[machine["name"]]
        return DatastoreFile(record["datastore"], f"{vm_name}/{self._renamed(machine, record['vmx'])}"), renamed

    def _register(self, machine: dict[str, Any]) -> None:
        """Registered (CPU, memory, NICs; no disks yet) and tagged while its disk files still copy."""
        vmx, record = self._registration(machine)
        vm_name = self.vm_names[machine["name"]]

        def register() -> str:
            vm_id = self.storage.register_vm(vmx, vm_name, self.restore["resource_pool"], {**record, "disks": []})
            self.tag(vm_id, machine["name"])
            return vm_id

        self.lanes.task(register, self._guard(machine, self._registered))

    def _registered(self, machine: dict[str, Any], done: Future[Any]) -> None:
        self.registered[machine["name"]] = done.result()
        self._progress(machine)

    def _on(self, vm_id: str, machine: dict[str, Any], done: Future[Any]) -> None:
        done.result()
        self.ready.append((machine["name"], vm_id))
