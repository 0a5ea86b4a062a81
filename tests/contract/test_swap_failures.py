"""A swap that vCenter keeps failing is given up after a few attempts: the replaced deployment
runs again, the copy stays where it stands, and SwapFailed names vCenter's message (over the
simulated vCenter, on every persistence)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import InfrastructureError
from domain.processes.swaps import MAX_ATTEMPTS
from tests.fencing import three_tier


def copy_of_production(runtime: Runtime) -> tuple[UUID, UUID]:
    configuration_id = three_tier(runtime)
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    copy_id = runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).state == "deployed"
    return production, copy_id


def names(runtime: Runtime, deployment_id: UUID) -> list[str]:
    recorded: list[Any] = list(runtime.app.repository.event_store.get(deployment_id))
    return [type(e).__qualname__.split(".")[-1] for e in recorded]


def swap_failing(runtime: Runtime, production: UUID, copy_id: UUID) -> None:
    """Ask for the swap, and let the follower retry it as often as it gives up."""
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=True, reason="patch 42")
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(InfrastructureError, match="host esx-2 unreachable"):
            runtime.catch_up()
        assert runtime.app.deployment(production).state == "swapping"
    runtime.catch_up()


def test_a_swap_failing_on_every_attempt_is_rolled_back_with_vcenters_message(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    production, copy_id = copy_of_production(runtime)
    vcenter.inject_fault("relocate", "host esx-2 unreachable", count=MAX_ATTEMPTS)
    swap_failing(runtime, production, copy_id)
    copy, previous = runtime.app.deployment(copy_id), runtime.app.deployment(production)
    assert (copy.state, copy.stage, copy.replaced) == ("deployed", "test", None)
    assert (previous.state, previous.replaced_by) == ("deployed", None)
    assert "host esx-2 unreachable" in (copy.failure or "")
    assert f"{MAX_ATTEMPTS} failed attempts" in (copy.failure or "")
    assert all(vm.powered_on for vm in vcenter.find_vms(production))  # production runs again
    assert copy.fence is not None  # still fenced
    assert all(vm.powered_on for vm in vcenter.find_vms(copy_id))
    assert names(runtime, copy_id).count("SwapAttemptFailed") == MAX_ATTEMPTS
    assert names(runtime, copy_id)[-1] == names(runtime, production)[-1] == "SwapFailed"
    service = runtime.app.service(copy.service_id)
    assert str(copy_id) not in service.live_deployments("prod")
    assert str(copy_id) in service.live_deployments("test")
    # Once vCenter is well again, the same swap can be asked for and goes through.
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=True, reason="patch 42, again")
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).state == "deployed"
    assert runtime.app.deployment(copy_id).replaced == str(production)


def test_a_copy_that_left_its_fence_is_stopped_before_production_runs_again(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    production, copy_id = copy_of_production(runtime)
    # The last step; the three machines start at once, each meeting the fault on every attempt.
    vcenter.inject_fault("power_on", "host esx-2 unreachable", count=3 * MAX_ATTEMPTS)
    swap_failing(runtime, production, copy_id)
    assert runtime.app.deployment(copy_id).state == "deployed"
    # The copy's NICs carry production's MACs on production's networks now: it stays off.
    assert not any(vm.powered_on for vm in vcenter.find_vms(copy_id) if vm.machine != "_fence-gateway")
    assert all(vm.powered_on for vm in vcenter.find_vms(production))


def test_a_swap_that_fails_once_is_retried_and_completes(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    production, copy_id = copy_of_production(runtime)
    vcenter.inject_fault("relocate", "host esx-2 unreachable", count=1)
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=True, reason="patch 42")
    with pytest.raises(InfrastructureError):
        runtime.catch_up()
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).replaced == str(production)
    assert names(runtime, copy_id).count("SwapAttemptFailed") == 1
