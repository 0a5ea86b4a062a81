"""The audit log reads well for placement: where each machine went and why, a stage's other pools,
and a rebalance (requested moves, each relocation, the end). Simulated vCenter, every persistence."""

from __future__ import annotations

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from tests.contract.test_audit_patch_events import summaries
from tests.support import ROOT_POOL, machine


def test_placement_and_a_rebalance_are_audited_with_hosts_and_reasons(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    app = runtime.app
    service_id = app.register_service("shop", "", [{"name": "int", "resource_pool": f"{ROOT_POOL}/shop"}], "a").value.id
    configuration_id = app.create_configuration(
        service_id, "web", "", [{"name": "front"}], [machine("web1"), machine("web2")], "a"
    ).value.id
    deployment_id = app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    deployment = app.deployment(deployment_id)
    web1, web2 = deployment.machine("web1"), deployment.machine("web2")
    placed = summaries(runtime, deployment_id)["Deployment.MachinePlaced"]
    assert placed[0].startswith(f"machine 'web1' placed on host {web1['placement']['host']} of DC0_C0, datastore ")
    assert "no other 'web' machine on it" in placed[1]

    vcenter.relocate_to_host(web2["vm_id"], web1["placement"]["host"], None)
    app.rebalance_deployment(deployment_id, False, actor="olivia", reason="spread")
    runtime.catch_up()
    found = summaries(runtime, deployment_id)
    to = app.deployment(deployment_id).machine("web1")["placement"]["host"]
    assert found["Deployment.RebalanceRequested"] == [f"rebalance requested: web1 {web1['placement']['host']} -> {to}"]
    assert found["Deployment.MachineRelocated"][0].startswith(
        f"machine 'web1' moved from host {web1['placement']['host']} to {to}: anti-affinity"
    )
    assert found["Deployment.RebalanceEnded"] == ["rebalanced: 1 move(s)"]

    app.undeploy(deployment_id, actor="a")  # a stage's pools change only while nothing lives there
    runtime.catch_up()
    app.update_stage(service_id, "int", {"extra_pools": ["/DC0/host/DC0_H0/Resources/shop"]}, actor="a")
    runtime.catch_up()
    service_rows = summaries(runtime, service_id)
    assert service_rows["Service.StageExtraPoolsChanged"] == [
        "stage 'int' other pools: none -> /DC0/host/DC0_H0/Resources/shop"
    ]
