"""Moving an archive's files between tiers (datastores and file tiers), and reading them back.

A move copies each file to the new tier and checks it there (a datastore copy is re-hashed through
vCenter's file access; a file-tier put hashes what it stores) before recording FileMoved. Moved
switches the archive over in one event; only then are the old copies freed (SourcesReleased). A
worker killed anywhere redoes at most the file it was on; the archive always has one complete copy
recorded. A file-tier put is keyed by archive and file: one redone after a crash replaces the put
the killed worker committed but never recorded, so its chunks' references are dropped too (keys
never meet across archives, and an archive's recorded puts on a tier are released before it can
move there again). A move that fails records MoveFailed with the copies it made (its FileMoved) to
free; they are freed like the old copies after Moved, and a worker killed while freeing them leaves
them recorded for the next one (release is idempotent), so a move never retried leaks nothing.
"""

from __future__ import annotations

import tempfile
from functools import partial
from typing import Any
from uuid import UUID

from domain.archive import DELETED, Archive, archive_folder
from domain.archive_ports import ArchiveFileCorruptedError, ArchiveStorage, DatastoreFile, FileTierStore
from domain.errors import VCenterFaultError
from domain.processes import archive_copies
from domain.processes.archive_copies import fetch_small, write_small
from domain.stagekeeper import Stagekeeper

ACTOR = "stagekeeper"
FILE_TIER = "file:"
SPOOL_BYTES = 8 << 20  # a file staged from a file tier spills to disk past this


def is_file_tier(tier: str) -> bool:
    return tier.startswith(FILE_TIER)


class MoveCheckError(Exception):
    """A file copied to the new tier does not read back with the archived SHA-256."""


class TierMoves:
    def __init__(self, app: Stagekeeper, storage: ArchiveStorage, file_tiers: dict[str, FileTierStore]) -> None:
        self.app = app
        self.storage = storage
        self.file_tiers = file_tiers

    def _tier(self, name: str) -> FileTierStore:
        tier = self.file_tiers.get(name)
        if tier is None:
            raise VCenterFaultError(f"file tier {name} is not configured (STAGEKEEPER_ARCHIVE_TIERS)")
        return tier

    def _step(self, archive_id: UUID, method: Any, **kwargs: Any) -> Archive:
        return self.app.record_archive_step(archive_id, partial(method, **kwargs, actor=ACTOR)).value

    def move(self, archive: Archive) -> None:
        assert archive.moving is not None
        to = archive.moving["to"]
        current: str | None = None
        try:
            for stored in list(archive.files):
                key = f"{stored['machine']}/{stored['name']}"
                assert archive.moving is not None
                if key in archive.moving["moved"]:
                    continue
                current = key
                path, manifest = self._copy(archive, stored, to)
                archive = self._step(
                    archive.id, Archive.record_file_moved, machine=stored["machine"], name=stored["name"], path=path,
                    manifest=manifest,
                )  # fmt: skip
            self._step(archive.id, Archive.complete_move)
        except (VCenterFaultError, MoveCheckError, ArchiveFileCorruptedError) as fault:
            message = fault.message if isinstance(fault, VCenterFaultError) else str(fault)
            if current is not None and to in self.file_tiers:
                # A worker killed after putting this file but before recording it left a put under
                # its key; the redo failed before replacing it. Nothing records it: drop it before
                # MoveFailed (killed here, the next worker redoes the file and comes back here).
                self.file_tiers[to].release_key(f"{archive.id}/{current}")
            self._step(archive.id, Archive.fail_move, failure=message)

    def _copy(self, archive: Archive, stored: dict[str, Any], to: str) -> tuple[str, dict[str, Any] | None]:
        name = f"{stored['machine']}/{stored['name']}"
        if is_file_tier(to):
            tier = self._tier(to)
            key = f"{archive.id}/{name}"  # a put redone after a kill replaces the unrecorded one
            if is_file_tier(stored["tier"]):
                with self._staged(stored) as (spool, _):
                    manifest = tier.put(name, spool, key)
            else:
                source = DatastoreFile(stored["tier"], stored["path"])
                manifest = self.storage.read_file(source, lambda stream: tier.put(name, stream, key))
            if manifest["sha256"] != stored["sha256"] or manifest["size"] != stored["size"]:
                tier.release(manifest)
                raise MoveCheckError(
                    f"file {stored['name']} of machine '{stored['machine']}' reads {manifest['sha256']} from tier "
                    f"{stored['tier']}, not the archived {stored['sha256']}: the move stops, the archive stays put"
                )
            return str(manifest["id"]), manifest
        folder = DatastoreFile(to, archive_folder(archive.id, stored["machine"]))
        self.storage.make_folder(folder)
        target = DatastoreFile(to, f"{folder.path}/{stored['name']}")
        self.bring(stored, target)
        digest = self.storage.digest(target)
        if digest.sha256 != stored["sha256"]:
            raise MoveCheckError(
                f"file {stored['name']} of machine '{stored['machine']}' reads back from {to} with SHA-256 "
                f"{digest.sha256}, not the archived {stored['sha256']}"
            )
        return target.path, None

    def bring(self, stored: dict[str, Any], target: DatastoreFile) -> None:
        """Put an archived file onto a datastore: a copy within vCenter, or staged from a file tier."""
        if not is_file_tier(stored["tier"]):
            source = DatastoreFile(stored["tier"], stored["path"])
            small = fetch_small(self.storage, source) if int(stored["size"]) <= archive_copies.SMALL_FILE else None
            if small is None:
                self.storage.copy_file(source, target)
            else:  # through vCenter's file access: a copy task costs more than the file
                write_small(self.storage, target, small[0])
            return
        with self._staged(stored) as (spool, size):
            self.storage.write_file(target, spool, size)

    def _staged(self, stored: dict[str, Any]) -> Any:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned as a context)
        try:
            self._tier(stored["tier"]).get(stored["manifest"], spool)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return _Staged(spool, int(stored["size"]))

    def free(self, location: dict[str, Any]) -> None:
        """Free one stored copy: release a file-tier put, delete a datastore file."""
        if is_file_tier(location["tier"]):
            if location.get("manifest"):
                self._tier(location["tier"]).release(location["manifest"])
            return
        self.storage.delete_folder(DatastoreFile(location["tier"], location["path"]))

    def release_sources(self, archive: Archive) -> None:
        """After Moved: free the old copies nobody else references (an archive that reused a file of
        this one keeps it), then record SourcesReleased."""
        referenced = {
            (f["tier"], f["path"])
            for other in (self.app.archive(i) for i in self.app.archive_ids() if i != archive.id)
            if other.state != DELETED
            for f in other.files
        }
        for old in archive.releasing:
            if old["owned"] and (old["tier"], old["path"]) not in referenced:
                self.free(old)
        self._step(archive.id, Archive.record_sources_released)


class _Staged:
    def __init__(self, spool: Any, size: int) -> None:
        self.spool = spool
        self.size = size

    def __enter__(self) -> tuple[Any, int]:
        return self.spool, self.size

    def __exit__(self, *_: object) -> None:
        self.spool.close()
