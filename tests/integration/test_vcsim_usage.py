"""Usage and quotas over HTTP, with the pyvmomi driver against vcsim and PostgreSQL.

vcsim leaves quick stats unset and VM storage at 0 (VCSIM.md), so used figures here are only
checked for shape; datastore free space does move there, and allocations come from the events.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from scripts.vcsim_harness import Vcsim
from tests.support import machine, postgres_schema, runtime_for, settings_for, stages

AUTH = ("admin", "secret-pw")
POOL = {"cidr": "10.61.0.0/24", "gateway": "10.61.0.1", "dns": ["10.61.0.2"], "first": "10.61.0.10"}


@pytest.fixture
def world(vcsim: Vcsim) -> Iterator[tuple[Runtime, TestClient]]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver(task_timeout=5))
        runtime.ensure_admin()
        runtime.app.import_templates(None, True, actor="admin")
        app = create_app(settings_for(url), runtime=runtime, start_workers=False)
        with TestClient(app) as client:
            yield runtime, client
        runtime.close()


def test_a_quota_refuses_the_deploy_that_would_cross_it_and_the_audit_keeps_the_refusal(
    world: tuple[Runtime, TestClient],
) -> None:
    runtime, client = world
    service_id = runtime.app.register_service("billing", "", stages("int", "test"), actor="admin").value.id
    runtime.app.update_stage(service_id, "int", {"ip_pools": [POOL]}, actor="admin")
    machines = [machine("web1", disks=[{"size_gib": 20}]), machine("app1", disks=[{"size_gib": 20}])]
    configuration_id = runtime.app.create_configuration(
        service_id, "b", "", [{"name": "front"}], machines, actor="admin"
    ).value.id
    patched = client.patch(
        f"/api/v1/services/{service_id}/stages/int", json={"quota": {"vcpus": 6, "disk_gib": 100}}, auth=AUTH
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["stages"][0]["quota"] == {"vcpus": 6, "memory_mib": None, "disk_gib": 100}
    first = client.post(f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"}, auth=AUTH)
    assert first.status_code == 202, first.text
    runtime.catch_up()
    assert runtime.app.deployment(UUID(first.json()["id"])).state == "deployed"
    time.sleep(0.01)
    deployed_at = datetime.now(UTC)
    time.sleep(0.01)

    refused = client.post(f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"}, auth=AUTH)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["field"] == "quota.vcpus"
    assert "vCPUs: requested 4, in use 4, limit 6" in error["message"]
    runtime.projection_follower.catch_up()
    audit = client.get("/api/v1/audit", params={"type": "Refusal.Recorded"}, auth=AUTH).json()["items"]
    assert any("quota_exceeded" in entry["summary"] and "limit 6" in entry["summary"] for entry in audit)
    # vcsim has two VMs for the first deployment only.
    assert len(runtime.vcenter.find_vms(UUID(first.json()["id"]))) == 2

    # Usage as of a past instant equals what was allocated then, after later changes.
    client.post(f"/api/v1/deployments/{first.json()['id']}/undeploy", json={}, auth=AUTH)
    runtime.catch_up()
    runtime.projection_follower.catch_up()
    then = client.get("/api/v1/usage/stages", params={"as_of": deployed_at.isoformat()}, auth=AUTH).json()
    int_then = next(s for s in then["stages"] if s["stage"] == "int")
    assert int_then["allocated"] == {"vcpus": 4, "memory_mib": 4096, "disk_gib": 40, "machines": 2}
    now = client.get("/api/v1/usage/stages", auth=AUTH).json()
    assert next(s for s in now["stages"] if s["stage"] == "int")["allocated"]["machines"] == 0


def test_the_collector_samples_vcsim_in_one_retrieval(world: tuple[Runtime, TestClient]) -> None:
    runtime, client = world
    service_id = runtime.app.register_service("ledger", "", stages("int"), actor="admin").value.id
    runtime.app.update_stage(service_id, "int", {"ip_pools": [POOL]}, actor="admin")
    configuration_id = runtime.app.create_configuration(
        service_id, "l", "", [{"name": "front"}], [machine("web1")], actor="admin"
    ).value.id
    runtime.app.deploy(configuration_id, "int", actor="admin")
    runtime.catch_up()
    runtime.clock.current = datetime.now(UTC)  # type: ignore[attr-defined]
    cycle = runtime.usage.collector.collect_once()
    assert cycle.vms == 1
    assert cycle.calls <= 3
    span = {"from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(), "step": "300"}
    usage = client.get(f"/api/v1/services/{service_id}/usage", params=span, auth=AUTH).json()
    sampled = [p["used"] for p in usage["points"] if p["used"]]
    assert sampled
    assert sampled[-1]["vms"] == 1.0
    assert usage["points"][-1]["allocated"]["machines"] == 1
    stores = client.get("/api/v1/datastores/usage", params=span, auth=AUTH).json()
    assert any(p["capacity_gib"] for d in stores["datastores"] for p in d["points"])
    assert [c["service"] for c in stores["consumers"]] == ["ledger"]
