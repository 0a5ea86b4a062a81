"""Start order on a fenced copy and on a swap, read from the order of the recorded events (over the
simulated vCenter, on every persistence)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from tests.fencing import fenced_stage
from tests.support import machine

ORDERED = [
    machine("web", nics=[{"network": "front"}], start_order={"group": 2}),
    machine("app", nics=[{"network": "front"}, {"network": "back"}], start_order={"group": 1}),
    machine("db", nics=[{"network": "back"}], start_order={"group": 0, "delay_seconds": 20}),
]


@pytest.fixture
def slept(runtime: Runtime) -> list[float]:
    waits: list[float] = []
    runtime.process.sleep = waits.append
    return waits


def production(runtime: Runtime) -> UUID:
    """A 3-tier configuration with a start order (db, then app after 20 s, then web), deployed in prod."""
    service = runtime.app.register_service(
        "shop", "", [fenced_stage("test", 100, "10.61.0.0/24"), fenced_stage("prod", 300, "10.62.0.0/24")],
        actor="admin",
    ).value  # fmt: skip
    networks = [{"name": "front"}, {"name": "back"}]
    configuration_id = runtime.app.create_configuration(service.id, "shop", "", networks, ORDERED, actor="admin")
    deployment_id = runtime.app.deploy(configuration_id.value.id, "prod", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def steps(runtime: Runtime, deployment_id: UUID) -> list[tuple[str, Any]]:
    """(event name, what it concerns) in the order recorded."""
    found = []
    recorded: list[Any] = list(runtime.app.repository.event_store.get(deployment_id))
    for event in recorded:
        name = type(event).__qualname__.split(".")[-1]
        if name == "FenceNetworkChanged":
            found.append((name, event.network))
        elif name == "MachineProvisioned":
            found.append((name, event.machine))
        elif name == "SwapStepDone":
            found.append((event.step, event.machine))
    return found


def test_a_fenced_copy_builds_its_port_groups_first_then_starts_machines_in_start_order(
    runtime: Runtime, slept: list[float]
) -> None:
    source = production(runtime)
    slept.clear()
    copy_id = runtime.app.copy_deployment(source, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).state == "deployed"
    assert steps(runtime, copy_id) == [
        ("FenceNetworkChanged", "front"), ("FenceNetworkChanged", "back"),
        ("MachineProvisioned", "db"), ("MachineProvisioned", "app"), ("MachineProvisioned", "web"),
    ]  # fmt: skip
    assert slept == [20.0]  # the wait after the db group, and no other
    assert all(vm.powered_on for vm in runtime.vcenter.find_vms(copy_id))


def test_a_swap_stops_the_replaced_machines_in_reverse_order_and_starts_the_copy_in_start_order(
    runtime: Runtime, slept: list[float]
) -> None:
    source = production(runtime)
    copy_id = runtime.app.copy_deployment(source, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    slept.clear()
    runtime.app.swap_deployment(copy_id, source, actor="petra", keep_previous=True, reason="patch tested")
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).state == "deployed"
    order = [s for s in steps(runtime, copy_id) if s[0] in ("off", "on")]
    assert order == [("off", "web"), ("off", "app"), ("off", "db"), ("on", "db"), ("on", "app"), ("on", "web")]
    assert slept == [20.0]
    # The replaced deployment's machines were off before any machine of the copy started.
    assert not any(vm.powered_on for vm in runtime.vcenter.find_vms(source))
