"""The Archive aggregate without I/O: its steps in order, what each refuses, moves that keep one
complete copy recorded, hold against retention and deletion."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.archive import Archive
from domain.errors import ConflictError, InvalidTransitionError

RECORD = {"name": "sk-1-web", "cpus": 2, "memory_mib": 2048, "disks": [], "nics": []}


def archive(retention_days: int | None = None) -> Archive:
    return Archive(
        service_id=uuid4(), deployment_id=uuid4(), configuration_id=uuid4(), configuration_name="p",
        configuration_version=3, stage="int", networks=[],
        machines=[{"name": "web", "vm_id": "vm-1", "vm_name": "sk-1-web", "spec": {}, "addressing": None}],
        consistency="power-off", tier="LocalDS_1", retention_days=retention_days, previous=[], actor="alice",
        reason="release",
    )  # fmt: skip


def complete() -> Archive:
    a = archive(retention_days=7)
    a.record_consistent(["web"], "pm")
    a.record_machine("web", RECORD, "pm")
    a.record_file(
        "web", "sk-1-web.vmx", 10, "a" * 64, "LocalDS_1", "stagekeeper-archives/x/web/sk-1-web.vmx", None, "pm"
    )
    a.complete("pm")
    return a


def test_an_archive_completes_only_with_every_machine_recorded_and_each_file_once() -> None:
    a = archive()
    a.record_consistent(["web"], "pm")
    with pytest.raises(InvalidTransitionError):
        a.complete("pm")
    a.record_machine("web", RECORD, "pm")
    a.record_file("web", "f", 1, "b" * 64, "LocalDS_1", "p/f", None, "pm")
    with pytest.raises(InvalidTransitionError):
        a.record_file("web", "f", 1, "b" * 64, "LocalDS_1", "p/f", None, "pm")
    a.complete("pm")
    assert (a.state, a.view()["logical_bytes"], a.view()["configuration_version"]) == ("complete", 1, 3)
    with pytest.raises(InvalidTransitionError):
        a.fail("late", "pm")


def test_a_move_switches_every_file_at_once_and_frees_the_old_copies_after() -> None:
    a = complete()
    a.request_move("file:/cold", "alice", None)
    with pytest.raises(ConflictError):
        a.request_restore(uuid4(), "test", "/p", False, "bob", None)  # not while moving
    with pytest.raises(InvalidTransitionError):
        a.complete_move("pm")  # the file is not on the new tier yet
    assert a.files[0]["tier"] == "LocalDS_1"  # the old copy is the recorded one until Moved
    a.record_file_moved("web", "sk-1-web.vmx", "put-1", {"id": "put-1"}, "pm")
    a.complete_move("pm")
    assert (a.tier, a.files[0]["tier"], a.files[0]["path"]) == ("file:/cold", "file:/cold", "put-1")
    assert a.releasing == [{"tier": "LocalDS_1", "path": "stagekeeper-archives/x/web/sk-1-web.vmx", "manifest": None,
                            "owned": True}]  # fmt: skip
    a.record_sources_released("pm")
    assert a.releasing == []


def test_a_failed_move_leaves_the_archive_where_it_was() -> None:
    a = complete()
    a.request_move("file:/cold", "alice", None)
    a.record_file_moved("web", "sk-1-web.vmx", "put-1", {"id": "put-1"}, "pm")
    a.fail_move("chunk store full", "pm")
    assert (a.tier, a.moving, a.move_failure) == ("LocalDS_1", None, "chunk store full")
    assert a.files[0]["tier"] == "LocalDS_1"
    # what the move put on the new tier is to be freed, as the old copies after Moved
    assert a.releasing == [{"tier": "file:/cold", "path": "put-1", "manifest": {"id": "put-1"}, "owned": True}]
    a.record_sources_released("pm")
    assert a.releasing == []


def test_hold_keeps_an_expired_archive_until_lifted() -> None:
    a = complete()
    later = a.created_on + timedelta(days=8)
    assert a.expired(later)
    a.set_hold("legal", "case 42")
    assert not a.expired(later)
    with pytest.raises(ConflictError):
        a.delete("alice", None)
    with pytest.raises(ConflictError):
        a.set_hold("legal", None)
    a.lift_hold("legal", None)
    a.delete("alice", "expired")
    assert a.state == "deleted"


def test_one_restore_at_a_time_and_it_ends_once() -> None:
    a = complete()
    restore_id = uuid4()
    a.request_restore(restore_id, "test", "/p", False, "bob", None)
    with pytest.raises(ConflictError):
        a.request_restore(uuid4(), "test", "/p", False, "bob", None)
    a.record_machine_restored(str(restore_id), "web", "vm-9", "pm")
    a.record_restored(str(restore_id), uuid4(), "pm")
    with pytest.raises(InvalidTransitionError):
        a.record_restore_failed(str(restore_id), "late", "pm")
    assert a.restoring() is None
