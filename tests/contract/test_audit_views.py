"""What the audit shows by default, and what an explicit filter adds (on every persistence)."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.runtime import Runtime
from api.cli import main
from domain.service import legacy_stage_id
from projections.audit_queries import AuditFilter
from tests.support import ROOT_POOL, runtime_for, stages


def types(runtime: Runtime, filters: AuditFilter) -> list[str]:
    items, _ = runtime.audit.page(filters, None, 1000)
    return [str(i["event_type"]) for i in items]


def test_name_claims_stay_out_of_the_default_view_but_an_explicit_filter_shows_them(runtime: Runtime) -> None:
    runtime.app.register_service("payroll", "", stages("int"), actor="a")
    runtime.app.register_service("hr", "", stages("int", pools="hr-"), actor="a")
    runtime.catch_up()
    shown = types(runtime, AuditFilter())
    assert "Service.Registered" in shown
    assert not [t for t in shown if t.startswith("NameClaim.")]
    everything = types(runtime, AuditFilter(include_system=True))
    assert everything.count("NameClaim.Claimed") == 4  # a name and a resource pool per service
    assert len(everything) == runtime.app.head()
    assert types(runtime, AuditFilter(event_type="NameClaim.")) == ["NameClaim.Claimed"] * 4
    assert types(runtime, AuditFilter(event_type="NameClaim.Claimed")) == ["NameClaim.Claimed"] * 4


def test_stages_get_ids_in_their_events_and_old_stages_a_derived_id(runtime: Runtime) -> None:
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int", "test"), actor="a").value.id
    app.add_stage(service_id, {"name": "prod", "resource_pool": f"{ROOT_POOL}/prod-pool"}, None, actor="a")
    ids = {s["name"]: s["id"] for s in app.service(service_id).stages}
    assert len({str(UUID(i)) for i in ids.values()}) == 3
    [registered] = [n for n in app.select_notifications(1, 100) if n.topic == "stagekeeper:Service.Registered"]
    assert [s["id"] for s in json.loads(registered.state)["stages"]] == [ids["int"], ids["test"]]
    assert {s["name"]: s["id"] for s in app.service(service_id).stages} == ids  # the same when read again

    # A service registered before stages had ids: its stored event has none.
    legacy = json.loads(registered.state)
    legacy["stages"] = [{k: v for k, v in s.items() if k != "id"} for s in legacy["stages"]]
    legacy["name"] = "old-payroll"
    old_id = uuid4()
    app.recorder.insert_events([StoredEvent(old_id, 1, "stagekeeper:Service.Registered", json.dumps(legacy).encode())])
    expected = [legacy_stage_id(old_id, "int"), legacy_stage_id(old_id, "test")]
    assert [s["id"] for s in app.service(old_id).stages] == expected
    assert legacy_stage_id(old_id, "int") == legacy_stage_id(str(old_id), "int")  # deterministic
    runtime.catch_up()
    [old] = [s for s in runtime.read_models.services() if s["id"] == str(old_id)]
    assert [s["id"] for s in old["stages"]] == expected
    app.update_stage(old_id, "int", {"name": "integration"}, actor="a")
    runtime.catch_up()
    items, _ = runtime.audit.page(AuditFilter(stage_ids=(expected[0],)), None, 100)
    assert [i["event_type"] for i in items] == ["Service.StageRenamed"]
    assert items[0]["stage_id"] == expected[0]


def test_the_cli_export_is_the_whole_log_bookkeeping_included(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = runtime_for(sqlite_url)
    try:
        first.app.register_service("payroll", "", stages("int"), actor="a")
        head = first.app.head()
    finally:
        first.close()
    monkeypatch.setenv("STAGEKEEPER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("STAGEKEEPER_ADMIN_PASSWORD", "secret-pw")
    output = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--output", str(output)]) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["position"] for line in lines] == list(range(1, len(lines) + 1))
    assert len(lines) >= head
    assert "NameClaim.Claimed" in [line["event_type"] for line in lines]
