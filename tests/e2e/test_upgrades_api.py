"""Upgrade in place, whole-deployment power and start orders over HTTP (simulated vCenter)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from tests.support import machine, settings_for, stages

AUTH = ("admin", "secret-pw")


@pytest.fixture
def idle_client(runtime: Runtime) -> Iterator[TestClient]:
    # Workers off: the test decides when the process manager runs (runtime.catch_up()).
    runtime.process.sleep = lambda seconds: None
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def configuration(client: TestClient, runtime: Runtime) -> tuple[str, str]:
    runtime.app.import_templates(None, True, actor="admin")
    service_id = runtime.app.register_service("shop", "", stages("int", "prod", restricted=("prod",)), actor="admin")
    body = {
        "name": "shop",
        "networks": [{"name": "front"}],
        "machines": [
            machine("db", start_order={"group": 0, "wait_for": "tools", "delay_seconds": 60}),
            machine("web", start_order={"group": 1}),
        ],
    }
    created = client.post(f"/api/v1/services/{service_id.value.id}/configurations", json=body, auth=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["machines"][0]["start_order"] == {"group": 0, "delay_seconds": 60, "wait_for": "tools"}
    configuration_id = created.json()["id"]
    added = client.post(f"/api/v1/configurations/{configuration_id}/machines", json=machine("cache"), auth=AUTH)
    assert added.status_code == 201, added.text
    deployment = client.post(
        f"/api/v1/configurations/{configuration_id}/deployments",
        json={"stage": "int", "configuration_version": 1},
        auth=AUTH,
    )
    assert deployment.status_code == 202, deployment.text
    runtime.catch_up()
    return configuration_id, deployment.json()["id"]


def test_upgrade_and_power_over_http(runtime: Runtime, idle_client: TestClient) -> None:
    _, deployment_id = configuration(idle_client, runtime)
    route = f"/api/v1/deployments/{deployment_id}"
    for body, field in (({"version": 7}, "version"), ({"version": "2"}, "version"), ({}, "version")):
        refused = idle_client.post(f"{route}/upgrade", json=body, auth=AUTH)
        assert (refused.status_code, refused.json()["error"]["field"]) == (422, field), refused.text
    same = idle_client.post(f"{route}/upgrade", json={"version": 1}, auth=AUTH)
    assert same.status_code == 409
    upgrading = idle_client.post(f"{route}/upgrade", json={"version": 2, "reason": "add a cache"}, auth=AUTH)
    assert upgrading.status_code == 202, upgrading.text
    assert (upgrading.json()["state"], upgrading.json()["target_version"]) == ("upgrading", 2)
    again = idle_client.post(f"{route}/upgrade", json={"version": 2}, auth=AUTH)
    assert again.status_code == 409
    runtime.catch_up()
    done = idle_client.get(route, auth=AUTH).json()
    assert (done["state"], done["configuration_version"], done["target_version"]) == ("deployed", 2, None)
    assert [m["name"] for m in done["machines"]] == ["db", "web", "cache"]

    bad = idle_client.post(f"{route}/power", json={"action": "reset"}, auth=AUTH)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "action")
    off = idle_client.post(f"{route}/power", json={"action": "off", "reason": "weekend"}, auth=AUTH)
    assert off.status_code == 202, off.text
    assert {tuple(m["power_pending"]) for m in off.json()["machines"]} == {("off",)}
    runtime.catch_up()
    assert {m["power"] for m in idle_client.get(route, auth=AUTH).json()["machines"]} == {"poweredOff"}
    twice = idle_client.post(f"{route}/power", json={"action": "off"}, auth=AUTH)
    assert twice.status_code == 409
    events = idle_client.get("/api/v1/audit", params={"deployment": deployment_id, "limit": 500}, auth=AUTH).json()
    summaries = [e["summary"] for e in events["items"]]
    assert any("power off of the whole deployment requested" in s for s in summaries)
    assert any(s == "upgraded: version 1 -> 2" for s in summaries)


def test_bad_start_orders_are_refused_naming_the_field(runtime: Runtime, idle_client: TestClient) -> None:
    configuration_id, _ = configuration(idle_client, runtime)
    url = f"/api/v1/configurations/{configuration_id}/machines"
    for order, field in (
        ({"group": 100}, "machine.start_order.group"),
        ({"delay_seconds": -1}, "machine.start_order.delay_seconds"),
        ({"wait_for": "ping"}, "start_order.wait_for"),
    ):
        refused = idle_client.post(url, json=machine("extra", start_order=order), auth=AUTH)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"].endswith(field), refused.json()
