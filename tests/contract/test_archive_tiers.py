"""Archives moving between tiers over the simulated vCenter, on every persistence: to the file tier
(compressed and deduplicated: two archives of one configuration store less than twice one), the
datastore copies freed after the move is recorded, a restore from the file tier staged back onto a
datastore, a corrupted chunk failing the restore naming the file, and the age policy run by the
scheduler with the Clock's time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.vcenter.simulated_archives import SimulatedArchiveStorage
from domain.archive import Archive
from domain.errors import ConflictError, ValidationError
from tests.support import FixedClock, machine, runtime_for, stages

MACHINES = [machine("web"), machine("app"), machine("db", template="tpl-rhel-9")]


@pytest.fixture
def tier(tmp_path: Path) -> str:
    return f"file:{tmp_path / 'cold'}"


@pytest.fixture
def runtime(database_url: str, vcenter: SimulatedVCenter, tier: str) -> Iterator[Runtime]:
    runtime = runtime_for(database_url, vcenter=vcenter, archive_tiers=f"LocalDS_1,{tier}", archive_move_after_days=30)
    runtime.app.import_templates(None, True, actor="admin")
    yield runtime
    runtime.close()


@pytest.fixture
def deployment_id(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("payroll", "", stages("int", "test"), actor="a").value
    configuration = runtime.app.create_configuration(service.id, "p3", "", [{"name": "front"}], MACHINES, actor="a")
    deployment_id = runtime.app.deploy(configuration.value.id, "int", actor="alice").value.id
    runtime.catch_up()
    return deployment_id


def archived(runtime: Runtime, deployment_id: UUID) -> UUID:
    archive_id = runtime.app.archive_now(deployment_id, actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.archive(archive_id).state == "complete"
    return archive_id


def moved(runtime: Runtime, archive_id: UUID, tier: str) -> None:
    runtime.app.move_archive(archive_id, tier, actor="alice", reason="older")
    runtime.catch_up()
    archive = runtime.app.archive(archive_id)
    assert (archive.tier, archive.moving, archive.move_failure, archive.releasing) == (tier, None, None, [])


def datastore_paths(runtime: Runtime, archive_id: UUID) -> list[str]:
    storage = runtime.archive_storage
    assert isinstance(storage, SimulatedArchiveStorage)
    return [f.path for f in storage.files if f.path.startswith(f"stagekeeper-archives/{archive_id}")]


def test_moving_to_the_file_tier_compresses_dedupes_and_frees_the_datastore_copies(
    runtime: Runtime, deployment_id: UUID, tier: str
) -> None:
    first = archived(runtime, deployment_id)
    assert datastore_paths(runtime, first)
    moved(runtime, first, tier)
    assert datastore_paths(runtime, first) == []
    archive = runtime.app.archive(first)
    assert {f["tier"] for f in archive.files} == {tier}
    one_logical, one_stored = runtime.file_tiers[tier].stats()
    assert one_stored < one_logical  # compressed, and web/app share their disk
    second = archived(runtime, deployment_id)
    moved(runtime, second, tier)
    two_logical, two_stored = runtime.file_tiers[tier].stats()
    assert two_logical == 2 * one_logical
    assert two_stored < 2 * one_stored


def test_a_restore_from_the_file_tier_stages_the_files_back_and_runs(
    runtime: Runtime, vcenter: SimulatedVCenter, deployment_id: UUID, tier: str
) -> None:
    archive_id = archived(runtime, deployment_id)
    moved(runtime, archive_id, tier)
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    runtime.app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()
    runtime.catch_up()
    (restore,) = runtime.app.archive(archive_id).restores.values()
    assert restore["state"] == "restored", restore["failure"]
    restored = runtime.app.deployment(UUID(restore["deployment_id"]))
    assert (restored.state, restored.configuration_version) == ("deployed", 1)
    assert all(vm.powered_on for vm in vcenter.find_vms(restored.id))
    # Moved back up to the datastore tier, it restores the same way.
    moved(runtime, archive_id, "LocalDS_1")
    assert datastore_paths(runtime, archive_id)


def test_a_corrupted_chunk_fails_the_restore_naming_the_file(runtime: Runtime, deployment_id: UUID, tier: str) -> None:
    archive_id = archived(runtime, deployment_id)
    moved(runtime, archive_id, tier)
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    disk = next(
        f for f in runtime.app.archive(archive_id).files if f["machine"] == "db" and f["name"].endswith("-flat.vmdk")
    )
    chunk = disk["manifest"]["chunks"][0]
    path = Path(tier[5:]) / "chunks" / chunk[:2] / chunk[2:4] / f"{chunk}.zst"
    path.write_bytes(b"not zstandard")
    runtime.app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()
    (restore,) = runtime.app.archive(archive_id).restores.values()
    assert restore["state"] == "failed"
    assert f"db/{disk['name']}" in restore["failure"]


def test_the_scheduler_moves_archives_older_than_the_policy_to_the_next_tier(
    runtime: Runtime, deployment_id: UUID, tier: str
) -> None:
    archive_id = archived(runtime, deployment_id)
    clock = runtime.clock
    assert isinstance(clock, FixedClock)
    clock.current = runtime.app.archive(archive_id).created_on + timedelta(days=29)
    runtime.archive_scheduler.catch_up()
    assert runtime.app.archive(archive_id).moving is None
    clock.advance(days=2)
    runtime.archive_scheduler.catch_up()
    assert runtime.app.archive(archive_id).moving == {"to": tier, "from": "LocalDS_1", "moved": {}}
    runtime.catch_up()
    assert runtime.app.archive(archive_id).tier == tier


def test_move_refuses_unknown_tiers_and_the_tier_it_is_on(runtime: Runtime, deployment_id: UUID) -> None:
    archive_id = archived(runtime, deployment_id)
    with pytest.raises(ValidationError) as error:
        runtime.app.move_archive(archive_id, "LocalDS_9", actor="a")
    assert error.value.field == "tier"
    with pytest.raises(ConflictError):
        runtime.app.move_archive(archive_id, "LocalDS_1", actor="a")


def test_a_worker_dying_mid_move_leaves_one_complete_copy_and_the_next_one_finishes(
    runtime: Runtime, deployment_id: UUID, tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_id = archived(runtime, deployment_id)
    storage = runtime.archive_storage
    assert isinstance(storage, SimulatedArchiveStorage)
    real = storage.read_file
    calls = {"n": 0}

    def dies_on_the_fourth(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise SystemExit("kill -9")  # what a dying worker leaves: nothing after this point runs
        return real(*args)

    monkeypatch.setattr(storage, "read_file", dies_on_the_fourth)
    runtime.app.move_archive(archive_id, tier, actor="alice")
    with pytest.raises(SystemExit):
        runtime.catch_up()
    half = runtime.app.archive(archive_id)
    assert half.tier == "LocalDS_1"  # still the recorded, complete copy
    assert half.moving is not None
    assert len(half.moving["moved"]) == 3
    assert len(datastore_paths(runtime, archive_id)) == len([f for f in half.files if f["reused_from"] is None])
    monkeypatch.setattr(storage, "read_file", real)
    runtime.catch_up()  # the next worker
    done = runtime.app.archive(archive_id)
    assert (done.tier, done.moving, done.releasing) == (tier, None, [])
    assert datastore_paths(runtime, archive_id) == []
    moved_events = [
        n
        for n in runtime.app.select_notifications(1, 10_000, topics=("stagekeeper:Archive.FileMoved",))
        if n.originator_id == archive_id
    ]
    assert len(moved_events) == len(done.files)  # every file moved once


def test_a_worker_dying_between_a_put_and_its_record_leaves_no_reference_behind(
    runtime: Runtime, deployment_id: UUID, tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The put of the third file commits on the tier, then the worker dies before FileMoved: the next
    worker puts that file again under the same key, and the tier counts each file of the archive once."""
    archive_id = archived(runtime, deployment_id)
    real = runtime.app.record_archive_step
    moved = {"n": 0}

    def dies_before_the_third_record(archive: UUID, step: Any) -> Any:
        if getattr(step, "func", None) is Archive.record_file_moved:
            moved["n"] += 1
            if moved["n"] == 3:
                raise SystemExit("kill -9")  # the put is committed on the tier, FileMoved never recorded
        return real(archive, step)

    monkeypatch.setattr(runtime.app, "record_archive_step", dies_before_the_third_record)
    runtime.app.move_archive(archive_id, tier, actor="alice")
    with pytest.raises(SystemExit):
        runtime.catch_up()
    file_tier = runtime.file_tiers[tier]
    half = runtime.app.archive(archive_id)
    assert half.moving is not None
    assert len(half.moving["moved"]) == 2
    # Three puts live (files are moved in the archive's order): two recorded, one lost with the worker.
    assert file_tier.stats()[0] == sum(f["size"] for f in half.files[:3])
    monkeypatch.setattr(runtime.app, "record_archive_step", real)
    runtime.catch_up()  # the next worker
    done = runtime.app.archive(archive_id)
    assert (done.tier, done.moving, done.releasing) == (tier, None, [])
    assert file_tier.stats()[0] == sum(f["size"] for f in done.files)  # the lost put is not counted
    runtime.app.delete_archive(archive_id, actor="alice", reason="done")
    runtime.catch_up()
    assert file_tier.stats()[0] == 0  # every put of the archive released: nothing lost to the crash


def test_a_stage_default_retention_applies_unless_the_request_gives_one(
    database_url: str, vcenter: SimulatedVCenter
) -> None:
    runtime = runtime_for(database_url, vcenter=vcenter, archive_retention="INT=30, test=90")
    try:
        runtime.app.import_templates(None, True, actor="admin")
        service = runtime.app.register_service("payroll", "", stages("int", "test"), actor="a").value
        configuration = runtime.app.create_configuration(service.id, "p", "", [{"name": "front"}], MACHINES, actor="a")
        deployment_id = runtime.app.deploy(configuration.value.id, "int", actor="alice").value.id
        runtime.catch_up()
        by_stage = runtime.app.archive_now(deployment_id, actor="alice").value
        assert by_stage.retention_days == 30
        runtime.catch_up()
        asked = runtime.app.archive_now(deployment_id, actor="alice", retention_days=5).value
        assert asked.retention_days == 5
    finally:
        runtime.close()


@pytest.mark.parametrize("text", ["int", "int=0", "=3", "int=x", "int=99999"])
def test_a_malformed_stage_retention_setting_names_the_variable(text: str) -> None:
    from adapters.archives import archive_retention
    from adapters.settings import SettingsError

    with pytest.raises(SettingsError, match="STAGEKEEPER_ARCHIVE_RETENTION"):
        archive_retention(text)
