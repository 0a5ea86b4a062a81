"""How the archive process records its steps (domain/processes/archives.py): decided on the archive
it holds, read again only after a lost race; its own events not driven again; a restore's VMs tagged
before the restored deployment is written, and recorded as tagged in that write."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.archive import Archive
from domain.commands.addresses import MAC_CLAIMS
from domain.commands.archives import RestoreReads
from domain.names import NameClaim
from tests.contract.test_archives import MACHINES, archived
from tests.support import stages


@pytest.fixture
def deployment_id(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("payroll", "", stages("int", "test"), actor="a").value
    configuration = runtime.app.create_configuration(service.id, "p3", "", [{"name": "front"}], MACHINES, actor="a")
    deployment_id = runtime.app.deploy(configuration.value.id, "int", actor="alice").value.id
    runtime.catch_up()
    return deployment_id


def positions(runtime: Runtime, topic: str, originator: UUID) -> list[int]:
    found = runtime.app.select_notifications(1, 100_000, topics=(f"stagekeeper:{topic}",))
    return [n.id for n in found if n.originator_id == originator]


def test_a_restore_tags_its_vms_and_records_them_tagged_in_its_own_write(
    runtime: Runtime,
    vcenter: SimulatedVCenter,
    deployment_id: UUID,
) -> None:
    archive_id = archived(runtime, deployment_id)
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    runtime.app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()  # once: the deployment's process manager has not met the restored deployment yet
    (restore,) = runtime.app.archive(archive_id).restores.values()
    assert restore["state"] == "restored", restore["failure"]
    restored = runtime.app.deployment(UUID(restore["deployment_id"]))
    assert restored.id == UUID(restore["id"])  # the restored deployment's id is its restore's
    assert restored.untagged_machines() == []
    vms = {vm.vm_id: vm for vm in vcenter.all_vms()}
    assert all(vms[m["vm_id"]].deployment_id == restored.id for m in restored.machines)
    (done,) = positions(runtime, "Archive.Restored", archive_id)
    tagged = positions(runtime, "Deployment.MachineTagged", restored.id)
    assert len(tagged) == 3
    between = runtime.app.select_notifications(done, max(tagged) - done + 1)
    assert {n.originator_id for n in between} == {archive_id, restored.id}  # in the restore's write
    runtime.catch_up()
    assert positions(runtime, "Deployment.MachineTagged", restored.id) == tagged  # nobody tags them again


def test_the_process_does_not_drive_again_the_events_it_recorded(
    runtime: Runtime,
    deployment_id: UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive_id = archived(runtime, deployment_id)
    (completed,) = [
        n
        for n in runtime.app.select_notifications(1, 100_000, topics=("stagekeeper:Archive.Completed",))
        if n.originator_id == archive_id
    ]
    reads: list[UUID] = []
    real = runtime.app.archive

    def counted(archive: UUID, version: int | None = None) -> Archive:
        reads.append(archive)
        return real(archive, version)

    monkeypatch.setattr(runtime.app, "archive", counted)
    runtime.archive_process.handle(runtime.app.decode(completed))  # met again, e.g. a batch read twice
    assert reads == []
    runtime.app.hold_archive(archive_id, True, actor="alice", reason="audit")  # not an event it drives
    reads.clear()
    requested = runtime.app.select_notifications(1, 100_000, topics=("stagekeeper:Archive.Requested",))
    fresh = runtime.archive_process.__class__(
        runtime.app, runtime.archive_process.vcenter, runtime.archive_process.storage
    )
    fresh.handle(runtime.app.decode(next(n for n in requested if n.originator_id == archive_id)))
    assert reads == [archive_id]  # a restarted process drives every event again, from a fresh read


def test_a_step_decided_on_a_stale_archive_is_decided_again_on_a_fresh_read(
    runtime: Runtime,
    deployment_id: UUID,
) -> None:
    archive_id = archived(runtime, deployment_id)
    stale = runtime.app.archive(archive_id)
    runtime.app.hold_archive(archive_id, True, actor="alice", reason="audit")  # another write wins the race
    step: Any = partial(Archive.set_retention, days=5, actor="stagekeeper", reason=None)
    saved = runtime.app.record_archive_step(archive_id, step, stale).value
    assert saved is not stale
    now = runtime.app.archive(archive_id)
    assert (now.hold, now.retention_days, now.version) == (True, 5, saved.version)
    # The archive in hand, when it is the latest, is used as it is.
    longer = partial(Archive.set_retention, days=6, actor="stagekeeper", reason=None)
    assert runtime.app.record_archive_step(archive_id, longer, now).value is now
    assert runtime.app.archive(archive_id).retention_days == 6


def test_a_restore_reads_its_claims_ahead_and_a_claim_taken_meanwhile_still_fails_it(
    runtime: Runtime,
    deployment_id: UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The final write's service and claims are read while the last files are checked; one taken by
    another deployment in between is not missed: that write loses the race and is decided again."""
    archive_id = archived(runtime, deployment_id)
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    real = runtime.app.read_restore_ahead
    taken: list[NameClaim] = []

    def ahead_then_taken(archive: Archive, restore_id: str, vms: dict[str, str]) -> RestoreReads:
        read = real(archive, restore_id, vms)
        mac = archive.machines[0]["addressing"]["macs"][0]
        claim_id = NameClaim.id_for(MAC_CLAIMS, mac["network"], mac["mac"])
        ahead = read.claims[claim_id]
        assert ahead is None or ahead.owner_id is None  # free when read (released by the undeploy)
        claim: Any = runtime.app.repository.get(claim_id)
        claim.reclaim(uuid4(), mac["mac"])
        runtime.app.commit(claim)  # another deployment's machine takes it now
        taken.append(claim)
        return read

    monkeypatch.setattr(runtime.app, "read_restore_ahead", ahead_then_taken)
    runtime.app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()
    (restore,) = runtime.app.archive(archive_id).restores.values()
    assert taken
    assert restore["state"] == "failed"
    assert f"MAC {taken[0].name}" in restore["failure"]


def test_a_restore_takes_the_claims_it_read_ahead_without_reading_them_again(
    runtime: Runtime,
    deployment_id: UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive_id = archived(runtime, deployment_id)
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    claim_reads: list[UUID] = []
    real_get = runtime.app.repository.get
    real_complete = runtime.app.complete_restore
    read_ahead: list[RestoreReads | None] = []

    def counted_get(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        found = real_get(aggregate_id, *args, **kwargs)
        if isinstance(found, NameClaim):
            claim_reads.append(aggregate_id)
        return found

    def complete(*args: Any, **kwargs: Any) -> Archive:
        read_ahead.append(args[6] if len(args) > 6 else kwargs.get("ahead"))
        monkeypatch.setattr(runtime.app.repository, "get", counted_get)
        try:
            return real_complete(*args, **kwargs)
        finally:
            monkeypatch.setattr(runtime.app.repository, "get", real_get)

    monkeypatch.setattr(runtime.app, "complete_restore", complete)
    runtime.app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()
    (restore,) = runtime.app.archive(archive_id).restores.values()
    assert restore["state"] == "restored", restore["failure"]
    assert read_ahead
    assert read_ahead[0] is not None  # read while the files were checked
    assert read_ahead[0].claims
    assert claim_reads == []  # and not read again by the write
    restored = runtime.app.deployment(UUID(restore["deployment_id"]))
    macs = [n for m in runtime.app.archive(archive_id).machines for n in m["addressing"]["macs"]]
    assert macs
    for mac in macs:  # taken for the restored deployment all the same
        claim: Any = real_get(NameClaim.id_for(MAC_CLAIMS, mac["network"], mac["mac"]))
        assert isinstance(claim, NameClaim)
        assert claim.owner_id is not None
    assert restored.state == "deployed"
