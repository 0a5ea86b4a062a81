"""The audit log reads well for the events the main audit history does not reach: local users
(groups, lockout, unlock, disable, enable), a stage quota, and a service imported from a file.
Every persistence."""

from __future__ import annotations

import base64
from pathlib import Path
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from api.auth import Authenticator
from domain.errors import AuthenticationError
from tests.support import machine, runtime_for, stages

PASSWORD = "correct horse battery"


def summaries(runtime: Runtime, aggregate_id: UUID) -> dict[str, list[str]]:
    runtime.projection_follower.catch_up()
    rows = runtime.store.query(
        "SELECT event_type, summary FROM sk_audit WHERE aggregate_id = %s ORDER BY position", (str(aggregate_id),)
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["event_type"], []).append(row["summary"])
    return found


def test_local_user_events_are_audited_in_words(runtime: Runtime) -> None:
    account = runtime.app.create_user("olivia", PASSWORD, ["payroll-team"], "Olivia", actor="admin").value
    auth = Authenticator(runtime.app, cache_seconds=0)
    wrong = "Basic " + base64.b64encode(b"olivia:guess").decode()
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.authenticate(wrong)
    runtime.app.unlock_user("olivia", "admin", reason="help desk")
    runtime.app.change_user("olivia", "admin", disabled=True, reason="left")
    runtime.app.change_user("olivia", "admin", disabled=False, reason="came back")
    found = summaries(runtime, account.id)
    assert found["LocalAccount.ProfileChanged"] == ["local groups: payroll-team; display name 'Olivia'"]
    assert found["LocalAccount.LockedOut"][0].startswith("locked out after 5 wrong passwords, until 2026-01-01")
    assert found["LocalAccount.Unlocked"] == ["unlocked"]
    assert found["LocalAccount.Disabled"] == ["local account disabled"]
    assert found["LocalAccount.Enabled"] == ["local account enabled"]


def test_a_quota_change_and_an_import_are_audited_in_words(runtime: Runtime, tmp_path: Path) -> None:
    app = runtime.app
    service = app.register_service("payroll", "", stages("int"), actor="olivia").value
    app.update_stage(service.id, "int", {"quota": {"vcpus": 16, "memory_mib": 65536}}, actor="olivia")
    app.create_configuration(service.id, "web", "", [{"name": "front"}], [machine("web1")], "olivia")
    runtime.catch_up()
    found = summaries(runtime, service.id)
    [quota] = found["Service.StageQuotaChanged"]
    assert quota.startswith("stage 'int' quota: ")
    assert "16" in quota
    ids = [UUID(str(r["id"])) for r in runtime.read_models.configurations(str(service.id))]
    document = app.export_service(service.id, ids, "olivia")
    target = runtime_for(f"sqlite:///{tmp_path}/target.db")
    try:
        target.app.import_service(document, "admin", reason="moving")
        [imported] = summaries(target, service.id)["Service.Imported"]
        assert imported == (
            f"imported from an export file ({document['chain']['count']} events, chain head "
            f"{document['chain']['head'][:12]})"
        )
    finally:
        target.close()
