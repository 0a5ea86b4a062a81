"""The rules that keep a swap's addresses single-use, and a revert true to the deployment it
reverts (review findings 1, 2, 3, 5, 6, 7, 11), at the application's level on every persistence."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.errors import ConflictError, ValidationError
from tests.fencing import fenced_stage, three_tier
from tests.support import machine


def deployed(runtime: Runtime, configuration_id: UUID, stage: str) -> UUID:
    deployment_id = runtime.app.deploy(configuration_id, stage, actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def fenced_copy(runtime: Runtime, source: UUID) -> UUID:
    copy_id = runtime.app.copy_deployment(source, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    return copy_id


def swapped(runtime: Runtime) -> tuple[UUID, UUID]:
    """(production, copy) after the copy swapped in, production kept."""
    production = deployed(runtime, three_tier(runtime), "prod")
    copy_id = fenced_copy(runtime, production)
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=True)
    runtime.catch_up()
    assert runtime.app.deployment(production).replaced_by == str(copy_id)
    return production, copy_id


def test_a_replaced_deployment_cannot_be_replaced_again(runtime: Runtime) -> None:
    production, _ = swapped(runtime)
    second = runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    with pytest.raises(ConflictError) as refused:
        runtime.app.swap_deployment(second, production, actor="petra")
    assert refused.value.field == "replaces"
    assert f"deployment {production} was already replaced" in str(refused.value)


def test_a_replaced_deployment_stays_off_until_swapped_back(runtime: Runtime) -> None:
    production, copy_id = swapped(runtime)
    deployment = runtime.app.deployment(production)
    with pytest.raises(ConflictError, match="swap it back"):
        deployment.request_deployment_power("on", "alice", None)
    with pytest.raises(ConflictError, match="swap it back"):
        deployment.request_power("web", "on", "alice", None)
    runtime.app.swap_back(production, actor="petra")
    runtime.catch_up()
    # Now the copy is the replaced one, and production may be powered as any deployment.
    assert runtime.app.deployment(production).replaced_by is None
    with pytest.raises(ConflictError, match="swap it back"):
        runtime.app.deployment(copy_id).request_deployment_power("on", "alice", None)


def test_a_replaced_deployment_cannot_revert_to_a_snapshot(runtime: Runtime) -> None:
    production = deployed(runtime, three_tier(runtime), "prod")
    runtime.app.snapshot_deployment(production, "before", actor="alice")
    runtime.catch_up()
    copy_id = fenced_copy(runtime, production)
    runtime.app.swap_deployment(copy_id, production, actor="petra")
    runtime.catch_up()
    with pytest.raises(ConflictError) as refused:
        runtime.app.revert_deployment(production, "before", actor="alice")
    assert refused.value.field == "snapshot"


def test_an_unfenced_copy_cannot_swap_in(runtime: Runtime) -> None:
    production = deployed(runtime, three_tier(runtime), "prod")
    copy_id = runtime.app.copy_deployment(production, "test", actor="bob").value.id
    runtime.catch_up()
    with pytest.raises(ConflictError, match="unfenced copy") as refused:
        runtime.app.swap_deployment(copy_id, production, actor="petra")
    assert refused.value.field == "replaces"
    assert runtime.app.deployment(production).state == "deployed"


def test_a_busy_revert_names_the_snapshot_field(runtime: Runtime) -> None:
    production = deployed(runtime, three_tier(runtime), "prod")
    runtime.app.snapshot_deployment(production, "one", actor="alice")
    with pytest.raises(ConflictError) as refused:
        runtime.app.revert_deployment(production, "one", actor="alice")
    assert refused.value.field == "snapshot"


def test_a_snapshot_records_its_configuration_version_and_machines(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime)
    deployment_id = deployed(runtime, configuration_id, "test")
    runtime.app.snapshot_deployment(deployment_id, "v1", actor="alice")
    runtime.catch_up()
    [record] = runtime.app.deployment(deployment_id).snapshot_records
    assert record == {"name": "v1", "configuration_version": 1, "machines": ["web", "app", "db"]}


def test_a_revert_across_an_upgrade_names_the_version_it_was_taken_at(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime)
    deployment_id = deployed(runtime, configuration_id, "test")
    runtime.app.snapshot_deployment(deployment_id, "v1", actor="alice")
    runtime.catch_up()
    runtime.app.add_machine(configuration_id, machine("cache", nics=[{"network": "back"}]), actor="alice")
    runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    runtime.catch_up()
    with pytest.raises(ConflictError, match="taken at version 1") as refused:
        runtime.app.revert_deployment(deployment_id, "v1", actor="alice")
    assert refused.value.field == "snapshot"


def test_a_snapshot_that_misses_a_machine_names_it(runtime: Runtime) -> None:
    deployment_id = deployed(runtime, three_tier(runtime), "test")
    deployment = runtime.app.deployment(deployment_id)
    # As a snapshot taken at this version that did not reach db (a record a partial run would leave).
    deployment._snapshot_taken(name="half", configuration_version=1, machines=["web", "app"], actor="a", reason=None)
    deployment._snapshot_work_ended(action="snapshot", name="half", failed=False, actor="a", reason=None)
    with pytest.raises(ConflictError, match="does not cover machine") as refused:
        deployment.request_revert("half", "alice", None)
    assert (refused.value.field, "db" in str(refused.value)) == ("snapshot", True)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("fence_gateway_template", "no-such-template"), ("dvswitch", "NO-SUCH-DVS"), ("external_network", "nowhere")],
)
def test_stage_fence_settings_must_name_what_exists(runtime: Runtime, setting: str, value: str) -> None:
    service_id = runtime.app.configuration(three_tier(runtime)).service_id
    with pytest.raises(ValidationError) as refused:
        runtime.app.update_stage(service_id, "test", {setting: value}, actor="a")
    assert refused.value.field == setting
    with pytest.raises(ValidationError) as refused:
        runtime.app.add_stage(service_id, fenced_stage("uat", 700, "10.63.0.0/24", **{setting: value}), None, "a")
    assert refused.value.field == setting
    assert runtime.app.service(service_id).stage("test")[setting] != value


def test_a_copy_swapped_back_may_take_the_place_again_though_it_left_its_fence(runtime: Runtime) -> None:
    production, copy_id = swapped(runtime)
    runtime.app.swap_back(production, actor="petra")
    runtime.catch_up()
    copy = runtime.app.deployment(copy_id)
    assert (copy.fence, copy.replaced_by) == (None, str(production))  # out of its fence, kept, off
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=True)
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).replaced == str(production)
    assert runtime.app.deployment(production).replaced_by == str(copy_id)
