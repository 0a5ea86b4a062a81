"""Placement across clusters and hosts, through the application on every store (memory, SQLite,
PostgreSQL) with the simulated vCenter modelling vcsim's `-cluster 2 -host 2 -ds 2` inventory:
MachinePlaced before each clone, tiers spread over hosts, a stage's other pools in another cluster
(claimed like its own), and rebalancing as a dry run and for real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ConflictError, InvalidTransitionError, ValidationError
from tests.support import machine, runtime_for

C0_POOL = "/DC0/host/DC0_C0/Resources/shop-int"
C1_POOL = "/DC0/host/DC0_C1/Resources/shop-int"


@pytest.fixture
def vcenter() -> SimulatedVCenter:
    sim = SimulatedVCenter(clusters={"DC0": ("DC0_C0", "DC0_C1", "DC0_H0", "DC0_H1")})
    sim.hosts_per_cluster = 2
    sim.datastores = ("LocalDS_0", "LocalDS_1")
    return sim


@pytest.fixture
def runtime(database_url: str, vcenter: SimulatedVCenter) -> Iterator[Runtime]:
    runtime = runtime_for(database_url, vcenter=vcenter)
    runtime.app.import_templates(None, True, actor="admin")
    yield runtime
    runtime.close()


def deploy(runtime: Runtime, machines: list[dict[str, Any]], extra_pools: list[str] | None = None) -> UUID:
    stage = {"name": "int", "resource_pool": C0_POOL, "extra_pools": extra_pools or []}
    service_id = runtime.app.register_service("shop", "", [stage], actor="admin").value.id
    configuration_id = runtime.app.create_configuration(
        service_id, "web", "", [{"name": "front"}], machines, actor="admin"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="olivia").value.id
    runtime.catch_up()
    return deployment_id


def kinds(runtime: Runtime, deployment_id: UUID) -> list[str]:
    return [type(e).__qualname__.split(".")[-1] for e in runtime.app.repository.event_store.get(deployment_id)]


def test_each_machine_is_placed_before_its_clone_and_a_tier_spreads_over_hosts(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    deployment_id = deploy(runtime, [machine("web1"), machine("web2"), machine("db1")])
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed"
    events = kinds(runtime, deployment_id)
    assert events.count("MachinePlaced") == 3
    assert events.index("MachinePlaced") < events.index("MachineProvisioned")
    placed = {m["name"]: m["placement"] for m in deployment.view()["machines"]}
    assert placed["web1"]["host"] != placed["web2"]["host"]
    for m in deployment.machines:
        # vCenter has each VM where placement said (the clone landed elsewhere, then moved).
        where = vcenter.vm_location(m["vm_id"])
        assert (where.host, where.datastore) == (m["placement"]["host"], m["placement"]["datastore"])
        assert m["placement"]["reason"]
        assert m["placement"]["cluster"] == "DC0_C0"  # the stage maps only this cluster


def test_a_stage_with_pools_in_two_clusters_places_over_both(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    vcenter.host_memory_mib = 4096  # each host holds two running 2 GiB machines
    machines = [machine(f"web{i}") for i in range(1, 5)] + [machine("db1"), machine("db2")]
    deployment_id = deploy(runtime, machines, extra_pools=[C1_POOL])
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed"
    view = {m["name"]: m for m in deployment.view()["machines"]}
    assert {m["placement"]["cluster"] for m in view.values()} == {"DC0_C0", "DC0_C1"}
    for m in view.values():
        assert m["resource_pool"] == m["placement"]["resource_pool"]
        assert vcenter.find_vms(deployment_id)  # the VMs exist in both pools
    assert len({view[f"web{i}"]["placement"]["host"] for i in range(1, 5)}) == 4  # four hosts, four web machines
    assert {vm.resource_pool for vm in vcenter.find_vms(deployment_id)} == {C0_POOL, C1_POOL}


def test_an_extra_pool_is_claimed_for_its_service(runtime: Runtime) -> None:
    stage = {"name": "int", "resource_pool": C0_POOL, "extra_pools": [C1_POOL]}
    runtime.app.register_service("shop", "", [stage], actor="admin")
    other = [{"name": "dev", "resource_pool": C1_POOL}]
    with pytest.raises(ConflictError, match="stage 'int' of service 'shop'"):
        runtime.app.register_service("hr", "", other, actor="admin")
    bad = [
        {
            "name": "dev",
            "resource_pool": "/DC0/host/DC0_C0/Resources/hr",
            "extra_pools": ["/DC0/host/NOPE/Resources"],
        }
    ]
    with pytest.raises(ValidationError, match="extra_pools"):
        runtime.app.register_service("hr", "", bad, actor="admin")


def test_extra_pools_change_on_a_stage_only_while_it_is_empty(runtime: Runtime) -> None:
    service_id = runtime.app.register_service(
        "shop", "", [{"name": "int", "resource_pool": C0_POOL}], actor="a"
    ).value.id
    changed = runtime.app.update_stage(service_id, "int", {"extra_pools": [C1_POOL]}, actor="a", reason="grow")
    assert changed.value.stage("int")["extra_pools"] == [C1_POOL]
    with pytest.raises(ConflictError, match="already used"):
        runtime.app.register_service("hr", "", [{"name": "dev", "resource_pool": C1_POOL}], actor="a")
    runtime.app.update_stage(service_id, "int", {"extra_pools": []}, actor="a")
    runtime.app.register_service("hr", "", [{"name": "dev", "resource_pool": C1_POOL}], actor="a")  # released


def test_rebalance_plans_in_a_dry_run_and_moves_when_asked(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    deployment_id = deploy(runtime, [machine("web1"), machine("web2")])
    deployment = runtime.app.deployment(deployment_id)
    web1, web2 = (deployment.machine(n) for n in ("web1", "web2"))
    # Someone (or DRS) put web2 beside web1.
    vcenter.relocate_to_host(web2["vm_id"], web1["placement"]["host"], None)
    version = deployment.version

    dry = runtime.app.rebalance_deployment(deployment_id, True, actor="olivia", reason="check").value
    assert [(m.machine, m.from_host) for m in dry.moves] == [("web1", web1["placement"]["host"])]
    assert runtime.app.deployment(deployment_id).version == version  # a dry run records nothing

    done = runtime.app.rebalance_deployment(deployment_id, False, actor="olivia", reason="spread web").value
    assert [m.to_dict() for m in done.moves] == [m.to_dict() for m in dry.moves]
    with pytest.raises(ConflictError, match="still running"):
        runtime.app.rebalance_deployment(deployment_id, False, actor="olivia")
    runtime.catch_up()
    after = runtime.app.deployment(deployment_id)
    assert kinds(runtime, deployment_id)[-3:] == ["RebalanceRequested", "MachineRelocated", "RebalanceEnded"]
    assert after.rebalance_work is None
    hosts = {vcenter.vm_location(m["vm_id"]).host for m in after.machines}
    assert len(hosts) == 2
    assert after.machine("web1")["placement"]["host"] == dry.moves[0].host
    assert runtime.app.rebalance_deployment(deployment_id, True, actor="olivia").value.moves == []


def test_rebalance_is_refused_unless_deployed_and_checks_its_input(runtime: Runtime) -> None:
    deployment_id = deploy(runtime, [machine("web1")])
    with pytest.raises(ValidationError, match="dry_run"):
        runtime.app.rebalance_deployment(deployment_id, "yes", actor="olivia")
    runtime.app.undeploy(deployment_id, actor="olivia")
    with pytest.raises(InvalidTransitionError, match="cannot rebalance"):
        runtime.app.rebalance_deployment(deployment_id, True, actor="olivia")


def test_a_failed_relocation_ends_the_rebalance_with_the_reason(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    deployment_id = deploy(runtime, [machine("web1"), machine("web2")])
    deployment = runtime.app.deployment(deployment_id)
    vcenter.relocate_to_host(deployment.machine("web2")["vm_id"], deployment.machine("web1")["placement"]["host"], None)
    runtime.app.rebalance_deployment(deployment_id, False, actor="olivia")
    vcenter.inject_fault("relocate_to_host", "host busy")
    runtime.catch_up()
    after = runtime.app.deployment(deployment_id)
    assert after.rebalance_work is None
    assert after.state == "deployed"
    last: Any = list(runtime.app.repository.event_store.get(deployment_id))[-1]
    assert type(last).__qualname__ == "Deployment.RebalanceEnded"
    assert last.failed
    assert "host busy" in (last.reason or "")
