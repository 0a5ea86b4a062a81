"""Archives over HTTP (workers running): Archive Now (202), the catalogue with space per tier, one
archive's files, hold / lift (409 when not held), retention, restore, and bad input naming the field."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_configuration, setup_service, wait_state


def wait_archive(client: TestClient, archive_id: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = dict(client.get(f"/api/v1/archives/{archive_id}", auth=AUTH).json())
        if done(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"archive never got there: {body}")


def test_archive_now_catalogue_hold_and_restore_over_http(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    deployed = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
    )
    deployment_id = deployed.json()["id"]
    wait_state(client, deployment_id, "deployed")

    refused = client.post(f"/api/v1/deployments/{deployment_id}/archive", json={"consistency": "x"}, auth=AUTH)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "consistency"
    started = client.post(f"/api/v1/deployments/{deployment_id}/archive", json={"reason": "release 7"}, auth=AUTH)
    assert started.status_code == 202, started.text
    archive_id = started.json()["id"]
    assert started.headers["Location"] == f"/api/v1/archives/{archive_id}"
    archive = wait_archive(client, archive_id, lambda a: a["state"] == "complete")
    assert {f["machine"] for f in archive["files"]} == {"web1", "web2", "app1", "db1"}
    assert all(len(f["sha256"]) == 64 for f in archive["files"])
    assert (archive["consistency"], archive["tier"], archive["requested_by"]) == ("power-off", "LocalDS_1", "admin")

    catalogue = client.get("/api/v1/archives", auth=AUTH).json()
    (item,) = catalogue["items"]
    assert (item["id"], item["configuration_version"], item["stage"]) == (archive_id, 1, "int")
    (tier,) = catalogue["tiers"]
    assert tier["name"] == "LocalDS_1"
    assert tier["stored_bytes"] < tier["logical_bytes"]  # web1 and web2 share their disk

    assert client.delete(f"/api/v1/archives/{archive_id}/hold", auth=AUTH).status_code == 409
    held = client.post(f"/api/v1/archives/{archive_id}/hold", json={"reason": "audit"}, auth=AUTH)
    assert held.json()["hold"] is True
    assert client.delete(f"/api/v1/archives/{archive_id}", auth=AUTH).status_code == 409
    kept = client.put(f"/api/v1/archives/{archive_id}/retention", json={"retention_days": 0}, auth=AUTH)
    assert kept.status_code == 422
    assert kept.json()["error"]["field"] == "retention_days"
    kept = client.put(f"/api/v1/archives/{archive_id}/retention", json={"retention_days": 90}, auth=AUTH)
    assert kept.json()["retention_days"] == 90
    assert kept.json()["expires_at"] is not None
    bad_tier = client.post(f"/api/v1/archives/{archive_id}/move", json={"tier": "nowhere"}, auth=AUTH)
    assert (bad_tier.status_code, bad_tier.json()["error"]["field"]) == (422, "tier")

    client.post(f"/api/v1/deployments/{deployment_id}/undeploy", auth=AUTH)
    wait_state(client, deployment_id, "undeployed")
    fenced = {"stage": "test", "fence": True}
    unfenceable = client.post(f"/api/v1/archives/{archive_id}/restore", json=fenced, auth=AUTH)
    assert (unfenceable.status_code, unfenceable.json()["error"]["field"]) == (422, "fence")  # the stage has no fence
    restore = client.post(f"/api/v1/archives/{archive_id}/restore", json={"stage": "test"}, auth=AUTH)
    assert restore.status_code == 202, restore.text
    done = wait_archive(client, archive_id, lambda a: a["restores"] and a["restores"][0]["state"] != "restoring")
    assert done["restores"][0]["state"] == "restored", done["restores"][0]["failure"]
    restored = wait_state(client, done["restores"][0]["deployment_id"], "deployed")
    assert (restored["stage"], restored["configuration_version"]) == ("test", 1)
    assert client.post(f"/api/v1/archives/{archive_id}/restore", json={"stage": "nope"}, auth=AUTH).status_code == 404
