"""Allocated resources and stage quotas, on every persistence (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.errors import ValidationError
from domain.quotas import QuotaExceededError
from domain.usage import Figures, allocation
from tests.support import THREE_TIER, machine, stages

DISKED = [machine("web1", disks=[{"size_gib": 20}]), machine("db1", cpus=4, memory_mib=4096, disks=[{"size_gib": 50}])]


def define(runtime: Runtime, machines: list[dict[str, Any]] = DISKED) -> tuple[UUID, UUID]:
    service = runtime.app.register_service("payroll", "", stages("int", "test", "prod"), actor="a").value
    configuration = runtime.app.create_configuration(
        service.id, "p", "", [{"name": "front"}], machines, actor="a"
    ).value
    return service.id, configuration.id


def instant() -> datetime:
    """A time strictly between the events written before and after it."""
    time.sleep(0.01)
    at = datetime.now(UTC)
    time.sleep(0.01)
    return at


def totals(runtime: Runtime, at: datetime | None) -> dict[str, dict[str, int]]:
    return {
        row["stage"]: {k: int(row[k]) for k in ("vcpus", "memory_mib", "disk_gib", "machines")}
        for row in runtime.usage.allocations.totals(at, None)
    }


def replayed(runtime: Runtime, at: datetime) -> dict[str, dict[str, int]]:
    """The same figures, from every deployment's aggregate at its last event at or before `at`."""
    held: dict[str, Figures] = {}
    for row in runtime.read_models.deployments(limit=10_000):
        deployment_id = UUID(row["id"])
        version = 0
        for event in runtime.app.repository.event_store.get(deployment_id):
            if getattr(event, "timestamp") <= at:  # noqa: B009 - the protocol does not declare it
                version = event.originator_version
        if not version:
            continue
        deployment = runtime.app.deployment(deployment_id, version=version)
        for stage, figures in allocation(deployment).items():
            held[stage] = held.get(stage, Figures()) + figures
    return {stage: figures.as_dict() for stage, figures in held.items()}


def test_allocation_as_of_any_instant_equals_a_replay(runtime: Runtime) -> None:
    _, configuration_id = define(runtime)
    before = instant()
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    deployed = instant()
    runtime.app.promote(deployment_id, actor="alice")
    runtime.catch_up()
    promoted = instant()
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    runtime.projection_follower.catch_up()
    held = {"vcpus": 6, "memory_mib": 6144, "disk_gib": 70, "machines": 2}
    assert totals(runtime, before) == {}
    assert totals(runtime, deployed) == {"int": held}
    assert totals(runtime, promoted) == {"test": held}
    assert totals(runtime, None) == {}
    for at in (before, deployed, promoted, instant()):
        assert totals(runtime, at) == replayed(runtime, at)


def test_a_move_holds_both_stages_until_it_completes(runtime: Runtime) -> None:
    _, configuration_id = define(runtime)
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    runtime.app.promote(deployment_id, actor="alice")
    runtime.projection_follower.catch_up()  # the process manager has not moved the VMs yet
    assert set(totals(runtime, None)) == {"int", "test"}
    runtime.catch_up()
    assert set(totals(runtime, None)) == {"test"}


def test_a_deploy_past_a_stage_quota_is_refused_with_the_figures(runtime: Runtime) -> None:
    service_id, configuration_id = define(runtime)
    runtime.app.update_stage(service_id, "int", {"quota": {"vcpus": 10, "memory_mib": None}}, actor="owner")
    assert runtime.app.service(service_id).stage("int")["quota"] == {"vcpus": 10}
    runtime.app.deploy(configuration_id, "int", actor="alice")
    with pytest.raises(QuotaExceededError) as refused:
        runtime.app.deploy(configuration_id, "int", actor="alice")
    assert "vCPUs: requested 6, in use 6, limit 10" in refused.value.message
    assert refused.value.field == "quota.vcpus"
    # Without its quota, the stage takes the second deployment.
    runtime.app.update_stage(service_id, "int", {"quota": None}, actor="owner")
    runtime.app.deploy(configuration_id, "int", actor="alice")
    assert len(runtime.app.service(service_id).live_deployments("int")) == 2


def test_promote_copy_and_upgrade_are_held_to_the_target_stage_quota(runtime: Runtime) -> None:
    service_id, configuration_id = define(runtime)
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    runtime.app.update_stage(service_id, "test", {"quota": {"disk_gib": 60}}, actor="owner")
    with pytest.raises(QuotaExceededError, match=r"provisioned disk \(GiB\): requested 70, in use 0, limit 60"):
        runtime.app.promote(deployment_id, actor="alice")
    with pytest.raises(QuotaExceededError, match="limit 60"):
        runtime.app.copy_deployment(deployment_id, "test", actor="alice")
    runtime.app.update_stage(service_id, "int", {"quota": {"memory_mib": 7000}}, actor="owner")
    bigger = [DISKED[0], {**DISKED[1], "memory_mib": 8192}]
    runtime.app.revise_configuration(configuration_id, {"machines": bigger}, actor="a")
    # The upgrade replaces what the deployment holds: 2048 + 8192 against 7000, its own 6144 not counted twice.
    with pytest.raises(QuotaExceededError, match=r"memory \(MiB\): requested 10240, in use 0, limit 7000"):
        runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    assert runtime.app.deployment(deployment_id).state == "deployed"


def test_stage_quotas_are_validated_and_read_back(runtime: Runtime) -> None:
    service_id, _ = define(runtime)
    for bad, field in (({"vcpus": -1}, "quota.vcpus"), ({"cpu": 1}, "quota.cpu"), ({"vcpus": True}, "quota.vcpus")):
        with pytest.raises(ValidationError) as refused:
            runtime.app.update_stage(service_id, "int", {"quota": bad}, actor="owner")
        assert refused.value.field == field
    runtime.app.update_stage(service_id, "prod", {"quota": {"vcpus": 64, "disk_gib": 500}}, actor="owner")
    runtime.projection_follower.catch_up()
    [row] = runtime.read_models.services()
    prod = next(s for s in row["stages"] if s["name"] == "prod")
    assert prod["quota"] == {"vcpus": 64, "disk_gib": 500}


def test_usage_series_allocated_follows_the_events(runtime: Runtime) -> None:
    from api.usage import Window, service_usage

    service_id, configuration_id = define(runtime, THREE_TIER)
    before = instant()
    runtime.app.deploy(configuration_id, "int", actor="alice")
    runtime.catch_up()
    span = Window(before - timedelta(minutes=10), before + timedelta(minutes=10), 300)
    document = service_usage(runtime, runtime.app.service(service_id), "INT", span, None)
    assert document["stage"] == "int"
    # Each point holds what was allocated when its 5 minutes closed.
    assert [p["allocated"]["machines"] for p in document["points"]] == [0, 0, 4, 4, 4]
    assert [p["allocated"]["vcpus"] for p in document["points"]] == [0, 0, 8, 8, 8]


def test_two_deploys_racing_past_one_quota_cannot_both_pass(runtime: Runtime) -> None:
    service_id, configuration_id = define(runtime)
    runtime.app.update_stage(service_id, "int", {"quota": {"vcpus": 6}}, actor="owner")  # room for one
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def deploy() -> None:
        barrier.wait()
        try:
            runtime.app.deploy(configuration_id, "int", actor="alice")
            outcomes.append("deployed")
        except QuotaExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=deploy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["deployed", "refused", "refused", "refused"]
    assert len(runtime.app.service(service_id).live_deployments("int")) == 1
