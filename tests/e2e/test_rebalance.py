"""Rebalance over HTTP and in the console: the dry-run plan, the recorded command, its audit trail,
and each machine's placement on the deployment response and page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from projections.audit_queries import AuditFilter
from tests.e2e.conftest import AUTH
from tests.e2e.test_console_access import World, build_world
from tests.support import ROOT_POOL, machine


def crowd(runtime: Runtime) -> UUID:
    """A deployed web tier, then web2 put beside web1 behind Stagekeeper's back."""
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    service_id = app.register_service("shop", "", [{"name": "int", "resource_pool": f"{ROOT_POOL}/shop"}], "setup")
    configuration_id = app.create_configuration(
        service_id.value.id, "web", "", [{"name": "front"}], [machine("web1"), machine("web2")], "setup"
    ).value.id
    deployment_id = app.deploy(configuration_id, "int", actor="setup").value.id
    # The background workers may hold part of the work: catch up until it is deployed and placed.
    deadline = time.monotonic() + 30
    while True:
        runtime.catch_up()
        deployment = app.deployment(deployment_id)
        placed = all(m.get("vm_id") and (m.get("placement") or {}).get("host") for m in deployment.machines)
        if deployment.state == "deployed" and placed:
            break
        assert time.monotonic() < deadline, f"not deployed and placed: {deployment.state}"
        time.sleep(0.02)
    web1, web2 = deployment.machine("web1"), deployment.machine("web2")
    runtime.vcenter.relocate_to_host(web2["vm_id"], web1["placement"]["host"], None)
    return deployment_id


def test_the_api_answers_a_plan_then_records_and_carries_it_out(client: TestClient, runtime: Runtime) -> None:
    deployment_id = crowd(runtime)
    url = f"/api/v1/deployments/{deployment_id}"
    machines = client.get(url, auth=AUTH).json()["machines"]
    assert all(m["placement"]["reason"] and m["placement"]["cluster"] == "DC0_C0" for m in machines)

    dry = client.post(url + "/rebalance", json={"dry_run": True}, auth=AUTH)
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert (plan["dry_run"], plan["recorded"], len(plan["moves"])) == (True, False, 1)
    assert "anti-affinity" in plan["moves"][0]["reason"]

    bad = client.post(url + "/rebalance", json={"dry_run": "no"}, auth=AUTH)
    assert bad.status_code == 422
    assert "dry_run" in bad.text

    done = client.post(url + "/rebalance", json={"dry_run": False, "reason": "spread web"}, auth=AUTH)
    assert done.status_code == 202, done.text
    assert done.json()["recorded"] is True
    runtime.catch_up()  # the workers may have carried it out already: then this finds nothing to do
    body = client.get(url, auth=AUTH).json()
    assert body["rebalance"] is None
    actual = {m["name"]: runtime.vcenter.vm_location(m["vm_id"]).host for m in body["machines"]}
    assert actual["web1"] != actual["web2"]
    moved = plan["moves"][0]
    recorded = next(m for m in body["machines"] if m["name"] == moved["machine"])["placement"]
    assert recorded["host"] == actual[moved["machine"]] == moved["host"]
    entries, _ = runtime.audit.page(AuditFilter(event_type="Deployment.RebalanceRequested"), None, 10)
    assert [(e["actor"], e["reason"]) for e in entries] == [("admin", "spread web")]
    assert "rebalance requested: web1" in entries[0]["summary"]


def test_rebalancing_an_undeployed_deployment_is_a_conflict(client: TestClient, runtime: Runtime) -> None:
    deployment_id = crowd(runtime)
    runtime.app.undeploy(deployment_id, actor="setup")
    refused = client.post(f"/api/v1/deployments/{deployment_id}/rebalance", json={"dry_run": True}, auth=AUTH)
    assert refused.status_code == 409
    assert "cannot rebalance" in refused.json()["error"]["message"]


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.runtime.close()


def test_the_console_shows_placement_and_confirms_a_rebalance_with_its_plan(world: World) -> None:
    csrf = world.sign_in("owner")
    deployment_id = world.ids["{deployment_id}"]
    deployment = world.runtime.app.deployment(UUID(deployment_id))
    page = world.client.get(f"/ui/deployments/{deployment_id}").text
    assert '<th scope="col">Placement</th>' in page
    assert f'data-placement="web1">{deployment.machine("web1")["placement"]["host"]}<' in page
    assert "Rebalance…" in page
    nothing = world.client.get(f"/ui/deployments/{deployment_id}/rebalance").text
    assert "nothing to move" in nothing
    assert 'action="/ui/deployments/' + deployment_id + '/rebalance"' not in nothing

    web1 = deployment.machine("web1")
    vcenter = world.runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    vcenter.maintenance = frozenset({web1["placement"]["host"]})  # its host goes into maintenance
    plan = world.client.get(f"/ui/deployments/{deployment_id}/rebalance").text
    assert "<h1>Rebalance p in int</h1>" in plan
    assert re.search(r'<tr data-machine="web1">.*is not usable \(maintenance', plan)
    assert world.runtime.app.deployment(UUID(deployment_id)).version == deployment.version  # a dry run only
    done = world.client.post(
        f"/ui/deployments/{deployment_id}/rebalance", data={"csrf": csrf, "reason": "host maintenance"},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    world.runtime.catch_up()
    after = world.runtime.app.deployment(UUID(deployment_id))
    assert vcenter.vm_location(web1["vm_id"]).host != web1["placement"]["host"]
    assert after.machine("web1")["placement"]["host"] == vcenter.vm_location(web1["vm_id"]).host
    page = world.client.get(f"/ui/deployments/{deployment_id}").text
    assert "host maintenance" in page  # the activity list shows the recorded reason


def test_a_stage_takes_pools_in_other_clusters_over_http(client: TestClient) -> None:
    extra = "/DC0/host/DC0_H0/Resources/shop-int"
    stage = {"name": "int", "resource_pool": f"{ROOT_POOL}/shop-int", "extra_pools": [extra]}
    created = client.post("/api/v1/services", json={"name": "shop", "stages": [stage]}, auth=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["stages"][0]["extra_pools"] == [extra]
    taken = client.post(
        "/api/v1/services", json={"name": "hr", "stages": [{"name": "dev", "resource_pool": extra}]}, auth=AUTH
    )
    assert taken.status_code == 409
    assert "stage 'int' of service 'shop'" in taken.json()["error"]["message"]
    service = created.json()["id"]
    unknown = client.patch(
        f"/api/v1/services/{service}/stages/int", json={"extra_pools": ["/DC0/host/NOPE/Resources"]}, auth=AUTH
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "extra_pools[0]"
    cleared = client.patch(f"/api/v1/services/{service}/stages/int", json={"extra_pools": []}, auth=AUTH)
    assert cleared.status_code == 200
    assert cleared.json()["stages"][0]["extra_pools"] == []


def test_the_console_sets_a_stages_other_pools_and_shows_a_wrong_one_beside_the_field(world: World) -> None:
    csrf = world.sign_in("owner")
    service = world.ids["{service_id}"]
    extra = "/DC0/host/DC0_H1/Resources/payroll-spare"
    form = {"csrf": csrf, "name": "spare", "resource_pool": f"{ROOT_POOL}/spare-pool", "extra_pools": extra + "\n"}
    saved = world.client.post(f"/ui/services/{service}/stages/spare", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert world.runtime.app.service(UUID(service)).stage("spare")["extra_pools"] == [extra]
    page = world.client.get(f"/ui/services/{service}").text
    assert f'<div class="muted" data-extra-pool="spare">+ {extra}</div>' in page
    wrong = world.client.post(
        f"/ui/services/{service}/stages/spare", data={**form, "extra_pools": "/DC0/host/NOPE/Resources"}
    )
    assert wrong.status_code == 422
    assert 'id="extra_pools-error"' in wrong.text
    assert "cluster &#39;NOPE&#39; does not exist" in wrong.text
