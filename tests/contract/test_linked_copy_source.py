"""The source of live linked copies keeps its VMs (review finding 10): their disks are deltas on
snapshots of its VMs, so undeploying it, or a swap that does not keep it, is refused (naming the
copies) until they are undeployed. Full copies do not hold their source. On every persistence."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.errors import InvalidTransitionError
from tests.fencing import three_tier


def production_with_copy(runtime: Runtime, copy_mode: str) -> tuple[UUID, UUID]:
    configuration_id = three_tier(runtime, copy_mode=copy_mode)
    prod = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    copy = runtime.app.copy_deployment(prod, "test", actor="bob", fence=True, reason="patch").value.id
    runtime.catch_up()
    assert runtime.app.deployment(copy).state == "deployed"
    return prod, copy


def test_the_source_of_a_live_linked_copy_refuses_undeploy_until_the_copy_is_gone(runtime: Runtime) -> None:
    prod, copy = production_with_copy(runtime, "linked")
    with pytest.raises(InvalidTransitionError, match=str(copy)):
        runtime.app.undeploy(prod, actor="alice", reason="done")
    assert runtime.app.deployment(prod).state == "deployed"
    runtime.app.undeploy(copy, actor="alice")
    with pytest.raises(InvalidTransitionError, match=str(copy)):  # still undeploying: its VMs still exist
        runtime.app.undeploy(prod, actor="alice", reason="done")
    runtime.catch_up()
    runtime.app.undeploy(prod, actor="alice", reason="done")
    runtime.catch_up()
    assert runtime.app.deployment(prod).state == "undeployed"


def test_a_swap_that_would_destroy_the_source_of_a_linked_copy_is_refused(runtime: Runtime) -> None:
    prod, copy = production_with_copy(runtime, "linked")
    with pytest.raises(InvalidTransitionError, match=str(copy)):
        runtime.app.swap_deployment(copy, prod, actor="alice", keep_previous=False)
    assert runtime.app.deployment(prod).state == "deployed"
    runtime.app.swap_deployment(copy, prod, actor="alice", keep_previous=True)  # kept: allowed
    runtime.catch_up()
    assert runtime.app.deployment(copy).stage == "prod"


def test_a_full_copy_does_not_hold_its_source(runtime: Runtime) -> None:
    prod, _ = production_with_copy(runtime, "full")
    runtime.app.undeploy(prod, actor="alice", reason="done")
    runtime.catch_up()
    assert runtime.app.deployment(prod).state == "undeployed"


def test_an_upgrade_that_would_destroy_a_linked_copys_base_vm_is_refused(runtime: Runtime) -> None:
    prod, copy = production_with_copy(runtime, "linked")
    configuration_id = runtime.app.deployment(prod).configuration_id
    spec = runtime.app.configuration(configuration_id).machines
    runtime.app.revise_configuration(configuration_id, {"machines": [m for m in spec if m["name"] != "web"]}, "alice")
    with pytest.raises(InvalidTransitionError, match=str(copy)):  # web's VM goes: the copy's web hangs on it
        runtime.app.upgrade_deployment(prod, 2, actor="alice")
    assert runtime.app.deployment(prod).state == "deployed"
    runtime.app.undeploy(copy, actor="alice")
    runtime.catch_up()
    runtime.app.upgrade_deployment(prod, 2, actor="alice")
    runtime.catch_up()
    assert [m["name"] for m in runtime.app.deployment(prod).machines] == ["app", "db"]
