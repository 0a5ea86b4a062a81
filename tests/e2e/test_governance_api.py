"""Approvals, freeze windows and stop the line over HTTP, with directory users and groups (slapd)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from scripts.slapd_harness import OWNERS, READERS, Slapd
from tests.e2e.test_permissions import CREDENTIALS, settings
from tests.support import FixedClock, machine, stages

OLIVIA, VICTOR, OSCAR, ALICE = (CREDENTIALS[r] for r in ("owner", "viewer", "operator", "admin"))


@pytest.fixture
def world(slapd: Slapd) -> Iterator[tuple[TestClient, Runtime, dict[str, Any]]]:
    config = settings(slapd)
    runtime = Runtime(config, vcenter=SimulatedVCenter(), clock=FixedClock())
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    service_id = app.register_service("payroll", "", stages("int", "test"), actor="setup").value.id
    app.grant_role(service_id, "service-owner", None, OWNERS, None, actor="setup")
    app.grant_role(service_id, "viewer", None, READERS, None, actor="setup")
    configuration_id = app.create_configuration(
        service_id, "p", "", [{"name": "front"}], [machine("web1")], "setup"
    ).value.id
    deployment_id = app.deploy(configuration_id, "int", actor="setup").value.id
    runtime.catch_up()
    client = TestClient(create_app(config, runtime=runtime, start_workers=False))
    yield client, runtime, {"service": str(service_id), "deployment": str(deployment_id)}
    runtime.close()


def test_a_promote_into_a_stage_with_approvals_answers_202_and_runs_once_approved(world: Any) -> None:
    client, runtime, ids = world
    policy = {"approvals": {"required": 1, "group": READERS, "expiry_hours": 48}, "soak_seconds": 0}
    assert client.patch(f"/api/v1/services/{ids['service']}/stages/test", json=policy, auth=OLIVIA).status_code == 200
    held = client.post(f"/api/v1/deployments/{ids['deployment']}/promote", json={"reason": "r7"}, auth=OLIVIA)
    assert held.status_code == 202
    body = held.json()
    assert body["state"] == "awaiting-approval"
    assert held.headers["Location"] == f"/api/v1/approvals/{body['approval_id']}"
    pending = client.get("/api/v1/approvals", params={"state": "pending"}, auth=VICTOR).json()["items"]
    assert [(a["id"], a["may_decide"]) for a in pending] == [(body["approval_id"], True)]
    assert client.get("/api/v1/approvals", auth=("nobody", "nobody-pw")).json()["items"] == []
    approve = f"/api/v1/approvals/{body['approval_id']}/approve"
    assert client.post(approve, json={"reason": "me"}, auth=OSCAR).status_code == 403
    assert client.post(approve, json={"reason": "green"}, auth=VICTOR).status_code == 200
    runtime.catch_up()
    runtime.catch_up()
    deployment = client.get(f"/api/v1/deployments/{ids['deployment']}", auth=OLIVIA).json()
    assert (deployment["stage"], deployment["state"]) == ("test", "deployed")
    approval = client.get(f"/api/v1/approvals/{body['approval_id']}", auth=OLIVIA).json()
    assert approval["state"] == "executed"
    assert client.post(approve, json={"reason": "again"}, auth=VICTOR).status_code == 409


def test_a_freeze_override_needs_the_window_s_group_and_is_audited(world: Any) -> None:
    client, runtime, ids = world
    now = runtime.clock.now()
    window = {
        "name": "month end",
        "service_id": ids["service"],
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=5)).isoformat(),
        "override_group": OWNERS,
    }
    created = client.post("/api/v1/freeze-windows", json=window, auth=OLIVIA)
    assert created.status_code == 201
    assert created.json()["active_until"] is not None
    promote = f"/api/v1/deployments/{ids['deployment']}/promote"
    frozen = client.post(promote, json={"reason": "r7"}, auth=OLIVIA)
    assert frozen.status_code == 409
    assert "month end" in frozen.json()["error"]["message"]
    no_reason = client.post(promote, json={"override_freeze": True}, auth=OLIVIA)
    assert no_reason.status_code == 422
    through = client.post(promote, json={"override_freeze": True, "reason": "payroll bug #12"}, auth=OLIVIA)
    assert through.status_code == 202
    assert through.json()["state"] == "promoting"
    runtime.catch_up()
    audit = client.get("/api/v1/audit", params={"type": "FreezeCalendar.Overridden"}, auth=ALICE).json()["items"]
    assert [(e["actor"], "payroll bug #12" in e["summary"]) for e in audit] == [("olivia", True)]


def test_stop_the_line_is_for_administrators_and_refuses_commands_with_its_reason(world: Any) -> None:
    client, _, ids = world
    assert client.post("/api/v1/stop-the-line", json={"reason": "x"}, auth=OLIVIA).status_code == 403
    stopped = client.post("/api/v1/stop-the-line", json={"reason": "incident 42"}, auth=ALICE)
    assert stopped.json()["on"] is True
    refused = client.post(f"/api/v1/deployments/{ids['deployment']}/undeploy", json={}, auth=OLIVIA)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "line_stopped"
    assert "incident 42" in refused.json()["error"]["message"]
    assert client.get("/api/v1/stop-the-line", auth=VICTOR).json()["reason"] == "incident 42"
    assert client.request("DELETE", "/api/v1/stop-the-line", auth=ALICE).json()["on"] is False
    again = client.post(f"/api/v1/deployments/{ids['deployment']}/undeploy", json={}, auth=OLIVIA)
    assert again.status_code == 202


def test_the_process_manager_thread_carries_out_an_approved_request(world: Any) -> None:
    client, runtime, ids = world
    runtime.start_workers()
    policy = {"approvals": {"required": 1, "group": READERS}}
    client.patch(f"/api/v1/services/{ids['service']}/stages/test", json=policy, auth=OLIVIA)
    held = client.post(f"/api/v1/deployments/{ids['deployment']}/promote", json={"reason": "r8"}, auth=OLIVIA)
    approval_id = held.json()["approval_id"]
    client.post(f"/api/v1/approvals/{approval_id}/approve", json={"reason": "go"}, auth=VICTOR)
    deadline = time.monotonic() + 20
    deployment: dict[str, Any] = {}
    while time.monotonic() < deadline:
        deployment = client.get(f"/api/v1/deployments/{ids['deployment']}", auth=OLIVIA).json()
        if (deployment["stage"], deployment["state"]) == ("test", "deployed"):
            break
        time.sleep(0.1)
    assert (deployment["stage"], deployment["state"]) == ("test", "deployed")
    assert client.get(f"/api/v1/approvals/{approval_id}", auth=VICTOR).json()["state"] == "executed"
