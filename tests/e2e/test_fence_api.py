"""Fences, copies, snapshots and the swap over HTTP (in process): the bodies and answers."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import wait_state
from tests.fencing import THREE_TIER, fenced_stage


def setup(client: TestClient) -> tuple[str, str]:
    assert client.post("/api/v1/templates/import", json={"all": True}, auth=AUTH).status_code == 200
    stages = [fenced_stage("test", 100, "10.61.0.0/24"), fenced_stage("prod", 300, "10.62.0.0/24")]
    response = client.post("/api/v1/services", json={"name": "shop", "stages": stages}, auth=AUTH)
    assert response.status_code == 201, response.text
    service = response.json()
    assert service["stages"][0]["vlan_range"] == {"first": 100, "last": 199}
    body = {"name": "shop", "networks": [{"name": "front"}, {"name": "back"}], "machines": THREE_TIER}
    configuration = client.post(f"/api/v1/services/{service['id']}/configurations", json=body, auth=AUTH)
    assert configuration.status_code == 201, configuration.text
    return service["id"], configuration.json()["id"]


def post(client: TestClient, path: str, body: Any = None) -> Any:
    response = client.post(path, json=body, auth=AUTH)
    assert response.status_code == 202, response.text
    return response.json()


def test_a_fenced_copy_snapshot_and_swap_over_http(client: TestClient) -> None:
    _, configuration_id = setup(client)
    prod = post(client, f"/api/v1/configurations/{configuration_id}/deployments", {"stage": "prod"})
    assert prod["fence"] is None
    wait_state(client, prod["id"], "deployed")
    copy = post(client, f"/api/v1/deployments/{prod['id']}/copy", {"stage": "test", "fence": True, "reason": "patch"})
    assert copy["copied_from"]["deployment_id"] == prod["id"]
    copy = wait_state(client, copy["id"], "deployed")
    fence = copy["fence"]
    assert [n["network"] for n in fence["networks"]] == ["front", "back"]
    assert fence["networks"][0]["portgroup"] == f"sk-{copy['id'].replace('-', '')[:12]}-front"
    assert fence["gateway"]["vm_name"].endswith("--gw")
    assert {n["machine"] for n in fence["nat"]} == {"web", "app", "db"}
    assert all(m["copied_from"] for m in copy["machines"])
    post(client, f"/api/v1/deployments/{copy['id']}/snapshot", {"name": "before patch"})
    deadline = time.monotonic() + 10
    while client.get(f"/api/v1/deployments/{copy['id']}", auth=AUTH).json()["snapshots"] != ["before patch"]:
        assert time.monotonic() < deadline, "the snapshot was never recorded"
        time.sleep(0.05)
    listed = client.get("/api/v1/deployments", params={"min_position": 0}, auth=AUTH).json()["items"]
    assert any(d["id"] == copy["id"] and d["fence"] == fence for d in listed)
    swapped = post(client, f"/api/v1/deployments/{copy['id']}/swap", {"replaces": prod["id"], "keep_previous": True})
    assert swapped["state"] == "swapping"
    done = wait_state(client, copy["id"], "deployed")
    assert (done["stage"], done["fence"], done["replaced"]) == ("prod", None, prod["id"])
    assert client.get(f"/api/v1/deployments/{prod['id']}", auth=AUTH).json()["replaced_by"] == copy["id"]
    post(client, f"/api/v1/deployments/{prod['id']}/swap-back", {"reason": "roll back"})
    assert wait_state(client, prod["id"], "deployed")["replaced"] == copy["id"]


def test_fence_inputs_are_refused_with_the_field_named(client: TestClient) -> None:
    service_id, configuration_id = setup(client)
    bad = {**fenced_stage("x", 1, "10.63.0.0/24"), "vlan_range": {"first": 10, "last": 5000}}
    response = client.post(f"/api/v1/services/{service_id}/stages", json=bad, auth=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "vlan_range.last"
    half = {"name": "y", "resource_pool": "/DC0/host/DC0_C0/Resources/y", "dvswitch": "DVS0"}
    response = client.post(f"/api/v1/services/{service_id}/stages", json=half, auth=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "vlan_range"
    response = client.post(
        f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "test", "fence": "yes"}, auth=AUTH
    )
    assert response.status_code == 422
    response = client.post(
        "/api/v1/deployments/00000000-0000-0000-0000-000000000000/swap", json={"replaces": "nope"}, auth=AUTH
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "replaces"
