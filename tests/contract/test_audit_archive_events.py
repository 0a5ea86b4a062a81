"""Every Archive event is audited under its service with a line that says what happened: an
archive, a failed one, hold and retention, a move to the file tier and a failed move, a restore
and a failed one, a deletion. Simulated vCenter, every persistence; the hash chain verifies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.vcenter.simulated_archives import SimulatedArchiveStorage
from domain.errors import VCenterFaultError
from projections.archive_summaries import ARCHIVE_SUMMARIES
from projections.verify import verify
from tests.support import machine, runtime_for, stages


@pytest.fixture
def runtime(database_url: str, vcenter: SimulatedVCenter, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_for(database_url, vcenter=vcenter, archive_tiers=f"LocalDS_1,file:{tmp_path / 'cold'}")
    runtime.app.import_templates(None, True, actor="admin")
    yield runtime
    runtime.close()


def test_every_archive_event_is_audited_under_its_service_with_its_own_summary(
    runtime: Runtime, vcenter: SimulatedVCenter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, tier = runtime.app, f"file:{tmp_path / 'cold'}"
    service_id = app.register_service("payroll", "", stages("int", "test"), actor="a").value.id
    configuration = app.create_configuration(service_id, "p", "", [{"name": "front"}], [machine("web")], actor="a")
    deployment_id = app.deploy(configuration.value.id, "int", actor="alice").value.id
    runtime.catch_up()
    vcenter.inject_fault("write_file", "datastore full")  # its small files go by HTTP
    failed = app.archive_now(deployment_id, actor="alice").value.id
    runtime.catch_up()
    archive_id = app.archive_now(deployment_id, actor="alice", reason="release 7").value.id
    runtime.catch_up()
    app.set_archive_retention(archive_id, 30, actor="alice")
    app.hold_archive(archive_id, True, actor="legal", reason="case 42")
    app.hold_archive(archive_id, False, actor="legal")
    storage = runtime.archive_storage
    assert isinstance(storage, SimulatedArchiveStorage)
    real = storage.read_file

    def refuses(*args: Any) -> Any:
        raise VCenterFaultError("vCenter fault during read: HTTP 503")

    monkeypatch.setattr(storage, "read_file", refuses)
    app.move_archive(archive_id, tier, actor="alice")
    runtime.catch_up()
    monkeypatch.setattr(storage, "read_file", real)
    app.move_archive(archive_id, tier, actor="alice")
    runtime.catch_up()
    app.restore_archive(archive_id, "test", False, actor="bob")  # the live deployment holds its MACs
    runtime.catch_up()
    app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    app.restore_archive(archive_id, "test", False, actor="bob")
    runtime.catch_up()
    app.delete_archive(failed, actor="alice", reason="useless")
    runtime.catch_up()

    rows = runtime.store.query(
        "SELECT event_type, summary, service_id FROM sk_audit WHERE event_type LIKE 'Archive.%%' ORDER BY position"
    )
    seen: dict[str, list[str]] = {}
    for row in rows:
        seen.setdefault(row["event_type"], []).append(row["summary"])
        assert row["service_id"] == str(service_id), row
    assert set(seen) == set(ARCHIVE_SUMMARIES)
    assert all(s != t for t, summaries in seen.items() for s in summaries)  # no fallback to the type name
    assert seen["Archive.Failed"] == ["archive failed: vCenter fault during write_file: datastore full"]
    assert seen["Archive.MoveFailed"] == [
        f"move to tier {tier} failed (the archive stays where it was): vCenter fault during read: HTTP 503"
    ]
    assert seen["Archive.Moved"] == [f"archive moved from tier LocalDS_1 to tier {tier}"]
    assert seen["Archive.HoldSet"] == ["archive put on hold"]
    assert seen["Archive.RetentionSet"] == ["archive retention set to 30 days"]
    assert "MAC" in seen["Archive.RestoreFailed"][0]
    restored = next(iter(r for r in app.archive(archive_id).restores.values() if r["state"] == "restored"))
    assert seen["Archive.Restored"] == [f"restore {restored['id']} done: deployment {restored['deployment_id']}"]
    assert UUID(restored["deployment_id"])
    verdict = verify(runtime.app, runtime.store)
    assert verdict.ok
