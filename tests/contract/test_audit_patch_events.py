"""The audit log reads well for the patch-testing events the main audit history does not reach:
a fenced upgrade (networks and NAT entries added and removed), a linked copy's snapshot removed,
and a swap vCenter keeps failing (attempts, then the rollback). Simulated vCenter, every persistence."""

from __future__ import annotations

from uuid import UUID

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.processes.swaps import MAX_ATTEMPTS
from tests.contract.test_fenced_upgrades import fenced_v1_then_v2
from tests.contract.test_linked_copy_source import production_with_copy
from tests.contract.test_swap_failures import copy_of_production, swap_failing


def summaries(runtime: Runtime, deployment_id: UUID) -> dict[str, list[str]]:
    rows = runtime.store.query(
        "SELECT event_type, summary FROM sk_audit WHERE aggregate_id = %s ORDER BY position", (str(deployment_id),)
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["event_type"], []).append(row["summary"])
    return found


def test_a_fenced_upgrade_is_audited_network_by_network_and_machine_by_machine(runtime: Runtime) -> None:
    _, deployment_id = fenced_v1_then_v2(runtime)  # v2: web goes, cache comes, network mgmt added, front dropped
    runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    runtime.catch_up()
    fence = runtime.app.deployment(deployment_id).fence_view()
    assert fence is not None
    found = summaries(runtime, deployment_id)
    mgmt = next(n for n in fence["networks"] if n["network"] == "mgmt")
    assert found["Deployment.FenceNetworkAdded"] == [
        f"fence network 'mgmt' added: port group {mgmt['portgroup']} (VLAN {mgmt['vlan']})"
    ]
    assert found["Deployment.FenceNetworkRemoved"] == ["fence network 'front' removed with its port group"]
    cache = next(n for n in fence["nat"] if n["machine"] == "cache")
    assert found["Deployment.FenceNatAdded"] == [
        f"NAT: machine 'cache' {cache['internal_ip']} -> {cache['external_ip']}"
    ]
    assert found["Deployment.FenceNatRemoved"] == ["NAT entry of machine 'web' removed, its external address released"]


def test_a_linked_copys_snapshots_removed_on_undeploy_are_audited(runtime: Runtime) -> None:
    _, copy = production_with_copy(runtime, "linked")
    runtime.app.undeploy(copy, actor="alice")
    runtime.catch_up()
    removed = summaries(runtime, copy)["Deployment.CopySnapshotRemoved"]
    assert sorted(removed) == sorted(
        f"snapshot taken for this linked copy removed from the source VM of machine '{m}'" for m in ("web", "app", "db")
    )


def test_a_swap_given_up_is_audited_attempt_by_attempt(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    production, copy_id = copy_of_production(runtime)
    vcenter.inject_fault("relocate", "host esx-2 unreachable", count=MAX_ATTEMPTS)
    swap_failing(runtime, production, copy_id)
    found = summaries(runtime, copy_id)
    attempts = found["Deployment.SwapAttemptFailed"]
    assert len(attempts) == MAX_ATTEMPTS
    assert attempts[0].startswith("swap attempt 1 failed: ")
    assert "host esx-2 unreachable" in attempts[0]
    (failed,) = found["Deployment.SwapFailed"]
    assert failed.startswith(f"swap with deployment {production} rolled back (incoming side): ")
    assert "host esx-2 unreachable" in failed
    (other,) = summaries(runtime, production)["Deployment.SwapFailed"]
    assert other.startswith(f"swap with deployment {copy_id} rolled back (outgoing side): ")
