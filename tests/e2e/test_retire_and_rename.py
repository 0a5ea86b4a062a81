"""Retiring a configuration and renaming a service, as a user sees them through the API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_configuration, setup_service, wait_state
from tests.support import ROOT_POOL


def one_stage(name: str, pool: str) -> dict[str, Any]:
    return {"name": name, "stages": [{"name": "int", "resource_pool": f"{ROOT_POOL}/{pool}"}]}


def test_a_configuration_is_retired_only_without_live_deployments_then_takes_no_change(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    cid = configuration["id"]
    deployment = client.post(f"/api/v1/configurations/{cid}/deployments", json={"stage": "int"}, auth=AUTH).json()
    wait_state(client, deployment["id"], "deployed")

    refused = client.post(f"/api/v1/configurations/{cid}/retire", json={"reason": "replaced"}, auth=AUTH)
    assert refused.status_code == 409
    assert deployment["id"] in refused.json()["error"]["message"]
    no_reason = client.post(f"/api/v1/configurations/{cid}/retire", json={"reason": " "}, auth=AUTH)
    assert (no_reason.status_code, no_reason.json()["error"]["field"]) == (422, "reason")

    client.post(f"/api/v1/deployments/{deployment['id']}/undeploy", auth=AUTH)
    wait_state(client, deployment["id"], "undeployed")
    retired = client.post(f"/api/v1/configurations/{cid}/retire", json={"reason": "replaced by v2"}, auth=AUTH)
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired"] is True

    deploy = client.post(f"/api/v1/configurations/{cid}/deployments", json={"stage": "int"}, auth=AUTH)
    assert deploy.status_code == 409
    assert "retired" in deploy.json()["error"]["message"]
    change = client.patch(f"/api/v1/configurations/{cid}", json={"description": "again"}, auth=AUTH)
    assert change.status_code == 409
    again = client.post(f"/api/v1/configurations/{cid}/retire", json={"reason": "twice"}, auth=AUTH)
    assert again.status_code == 409
    # Still readable, with its whole history; its name is free for a new configuration.
    assert client.get(f"/api/v1/configurations/{cid}", params={"version": 1}, auth=AUTH).status_code == 200
    history = client.get(
        f"/api/v1/configurations/{cid}/history", params={"min_position": retired.json()["position"]}, auth=AUTH
    ).json()["items"]
    assert history[-1]["event_type"] == "Configuration.Retired"
    assert (history[-1]["actor"], history[-1]["reason"]) == ("admin", "replaced by v2")
    reused = client.post(f"/api/v1/services/{service['id']}/configurations", json={"name": "p3"}, auth=AUTH)
    assert reused.status_code == 201, reused.text


def test_a_service_is_renamed_and_its_old_name_is_free_while_a_taken_name_is_refused(client: TestClient) -> None:
    service = setup_service(client)
    other = client.post("/api/v1/services", json=one_stage("hr", "hr-int"), auth=AUTH)
    assert other.status_code == 201
    taken = client.patch(f"/api/v1/services/{service['id']}", json={"name": "HR"}, auth=AUTH)
    assert taken.status_code == 409
    assert client.get(f"/api/v1/services/{service['id']}", auth=AUTH).json()["name"] == "payroll"

    renamed = client.patch(f"/api/v1/services/{service['id']}", json={"name": "Gehalt"}, auth=AUTH)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["description"]) == ("Gehalt", "Pay")
    listed = client.get("/api/v1/services", params={"min_position": renamed.json()["position"]}, auth=AUTH).json()
    assert sorted(s["name"] for s in listed["items"]) == ["Gehalt", "hr"]
    again = client.post("/api/v1/services", json=one_stage("payroll", "payroll-2"), auth=AUTH)
    assert again.status_code == 201, again.text
    assert client.patch(f"/api/v1/services/{service['id']}", json={"name": "PAYROLL"}, auth=AUTH).status_code == 409
