"""Drift and previews over HTTP: the answers, the 4xx naming the field or rule, never a 500."""

from __future__ import annotations

from uuid import UUID

from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from tests.e2e.conftest import AUTH, settle
from tests.support import machine, stages


def deployed(runtime: Runtime) -> UUID:
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    service = app.register_service("shop", "", stages("int", "prod"), actor="setup").value.id
    configuration = app.create_configuration(service, "c", "", [{"name": "front"}], [machine("web")], "setup")
    deployment_id = app.deploy(configuration.value.id, "int", actor="setup").value.id
    runtime.catch_up()
    settle(runtime)
    return deployment_id


def test_check_adopt_and_the_drifted_filter_over_http(client: TestClient, runtime: Runtime) -> None:
    deployment_id = deployed(runtime)
    vcenter = runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    vm_id = str(runtime.app.deployment(deployment_id).machine("web")["vm_id"])
    vcenter.power_off(vm_id)
    checked = client.post(f"/api/v1/deployments/{deployment_id}/check", auth=AUTH)
    assert checked.status_code == 200
    assert checked.json()["drifted"] is True
    assert {(d["machine"], d["field"], d["actual"]) for d in checked.json()["drift"]} == {
        ("web", "power", "poweredOff")
    }
    position = checked.json()["position"]
    listed = client.get("/api/v1/deployments", params={"drifted": "true", "min_position": position}, auth=AUTH)
    assert [d["id"] for d in listed.json()["items"]] == [str(deployment_id)]
    clean = client.get("/api/v1/deployments", params={"drifted": "false", "min_position": position}, auth=AUTH)
    assert clean.json()["items"] == []
    no_reason = client.post(f"/api/v1/deployments/{deployment_id}/drift/web.power/adopt", json={}, auth=AUTH)
    assert (no_reason.status_code, no_reason.json()["error"]["field"]) == (422, "reason")
    unknown = client.post(
        f"/api/v1/deployments/{deployment_id}/drift/web.colour/adopt", json={"reason": "r"}, auth=AUTH
    )
    assert (unknown.status_code, unknown.json()["error"]["field"]) == (422, "field")
    absent = client.post(f"/api/v1/deployments/{deployment_id}/drift/web.cpus/revert", json={}, auth=AUTH)
    assert (absent.status_code, absent.json()["error"]["field"]) == (404, "field")
    adopted = client.post(
        f"/api/v1/deployments/{deployment_id}/drift/web.power/adopt", json={"reason": "kept off for now"}, auth=AUTH
    )
    assert adopted.status_code == 200
    assert adopted.json()["drift"] == []
    assert adopted.json()["machines"][0]["power"] == "poweredOff"
    runtime.catch_up()
    audit = client.get("/api/v1/audit", params={"deployment": str(deployment_id), "limit": 100}, auth=AUTH).json()
    summaries = {e["summary"] for e in audit["items"]}
    assert "drift on machine 'web': power is poweredOff in vCenter, poweredOn in the history" in summaries
    assert "drift on machine 'web' adopted: power is now poweredOff (configuration version 1)" in summaries


def test_check_of_a_deployment_not_at_rest_is_a_conflict(client: TestClient, runtime: Runtime) -> None:
    deployment_id = deployed(runtime)
    runtime.app.undeploy(deployment_id, actor="setup")
    refused = client.post(f"/api/v1/deployments/{deployment_id}/check", auth=AUTH)
    assert refused.status_code == 409


def test_previews_over_http(client: TestClient, runtime: Runtime) -> None:
    deployment_id = deployed(runtime)
    promote = client.get(f"/api/v1/deployments/{deployment_id}/promote-preview", auth=AUTH)
    assert promote.status_code == 200
    assert promote.json()["target_stage"] == "prod"
    assert promote.json()["running_now"] is None
    assert promote.json()["machines"]["added"] == ["web"]
    upgrade = client.get(f"/api/v1/deployments/{deployment_id}/upgrade-preview", params={"version": 7}, auth=AUTH)
    assert (upgrade.status_code, upgrade.json()["error"]["field"]) == (422, "version")
    swap = client.get(f"/api/v1/deployments/{deployment_id}/swap-preview", auth=AUTH)
    assert (swap.status_code, swap.json()["error"]["field"]) == (422, "replaces")


def test_orphans_over_http(client: TestClient, runtime: Runtime) -> None:
    deployed(runtime)
    vcenter = runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    stray = vcenter.add_existing_vm("stray", "/DC0/host/DC0_C0/Resources")
    vcenter.tag_vm(stray, UUID(int=3), "web")
    answer = client.get("/api/v1/drift/orphans", auth=AUTH)
    assert answer.status_code == 200
    assert [o["vm_id"] for o in answer.json()["items"]] == [stray]
