"""The console routes over HTTP on the simulated vCenter: errors a user sees, and the audit."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from tests.support import THREE_TIER, settings_for, stages

AUTH = ("admin", "secret-pw")


@pytest.fixture
def idle_client(runtime: Runtime) -> Iterator[TestClient]:
    # Workers off: the test decides when the process manager runs (runtime.catch_up()).
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def deployed(runtime: Runtime) -> UUID:
    runtime.app.import_templates(None, True, actor="admin")
    service_id = runtime.app.register_service("consoles", "", stages("int"), actor="admin").value.id
    configuration = runtime.app.create_configuration(service_id, "c", "", [{"name": "front"}], THREE_TIER, "admin")
    deployment_id = runtime.app.deploy(configuration.value.id, "int", actor="admin").value.id
    runtime.catch_up()
    return deployment_id


def test_console_routes_answer_with_the_users_errors_and_audit_the_ticket(
    runtime: Runtime, idle_client: TestClient
) -> None:
    deployment_id = deployed(runtime)
    machines = f"/api/v1/deployments/{deployment_id}/machines"
    bad = idle_client.post(f"{machines}/web1/power", json={"action": "hibernate"}, auth=AUTH)
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "action"
    missing = idle_client.post(f"{machines}/web1/power", json={}, auth=AUTH)
    assert (missing.status_code, missing.json()["error"]["field"]) == (422, "action")
    unknown = idle_client.get(f"{machines}/nope/console", auth=AUTH)
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]["message"]

    ticket = idle_client.get(f"{machines}/web1/console", auth=AUTH)
    assert ticket.status_code == 200
    assert ticket.headers["cache-control"] == "no-store"
    assert ticket.json()["webmks_url"].startswith("wss://")
    runtime.catch_up()
    audit = idle_client.get("/api/v1/audit", params={"limit": 5}, auth=AUTH).json()["items"]
    opened = next(e for e in audit if e["event_type"] == "Deployment.ConsoleOpened")
    assert opened["actor"] == "admin"
    assert "web1" in opened["summary"]

    off = idle_client.post(f"{machines}/web1/power", json={"action": "off", "reason": "patch"}, auth=AUTH)
    assert off.status_code == 202
    assert next(m for m in off.json()["machines"] if m["name"] == "web1")["power_pending"] == ["off"]
    runtime.catch_up()
    again = idle_client.post(f"{machines}/web1/power", json={"action": "off"}, auth=AUTH)
    assert again.status_code == 409
    assert "poweredOff" in again.json()["error"]["message"]
    assert idle_client.get(f"{machines}/web1/screenshot", auth=AUTH).status_code == 409
    shot = idle_client.get(f"{machines}/app1/screenshot", auth=AUTH)
    assert (shot.status_code, shot.headers["content-type"]) == (200, "image/png")
    assert shot.content.startswith(b"\x89PNG")
