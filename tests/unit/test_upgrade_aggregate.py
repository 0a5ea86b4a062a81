"""Upgrade in place and whole-deployment power in the Deployment aggregate, and the upgrade plan."""

from __future__ import annotations

import pytest

from domain.deployment import ACTIVE_STATES, STATES, UPGRADING, Deployment
from domain.errors import InvalidTransitionError, ValidationError
from domain.processes.upgrade import plan_upgrade
from tests.support import machine
from tests.unit.test_deployment_aggregate import given_deployed

V4 = [machine("web1", cpus=4), machine("cache")]  # db1 goes, web1 grows, cache comes


def upgrading() -> Deployment:
    deployment = given_deployed()
    deployment.request_upgrade(4, [{"name": "front"}], V4, "bob", "patch")
    return deployment


def test_upgrading_is_a_state_the_process_manager_works_on() -> None:
    assert UPGRADING in STATES
    assert UPGRADING in ACTIVE_STATES


def test_an_upgrade_request_adds_the_new_machines_pending_and_plans_only_the_differences() -> None:
    deployment = upgrading()
    assert deployment.state == "upgrading"
    assert deployment.view()["target_version"] == 4
    assert [(m["name"], m["state"]) for m in deployment.machines] == [
        ("web1", "provisioned"), ("db1", "provisioned"), ("cache", "pending"),
    ]  # fmt: skip
    plan = plan_upgrade(deployment)
    assert (plan.remove, plan.change, plan.add) == (("db1",), ("web1",), ("cache",))


def test_the_upgrade_completes_only_when_every_difference_is_reconciled() -> None:
    deployment = upgrading()
    with pytest.raises(InvalidTransitionError, match="not upgraded yet: web1, db1, cache"):
        deployment.complete_upgrade("pm")
    deployment.record_machine_removed("db1", "pm")
    deployment.record_machine_reconfigured("web1", power_cycled=True, actor="pm")
    deployment.record_machine_provisioned("cache", "vm-cache", "id-cache", None, None, "pm")
    assert plan_upgrade(deployment).done
    deployment.complete_upgrade("pm")
    assert (deployment.state, deployment.configuration_version, deployment.upgrade) == ("deployed", 4, None)
    assert [m["name"] for m in deployment.machines] == ["web1", "cache"]
    assert deployment.machine("web1")["spec"]["cpus"] == 4


def test_a_machine_of_the_target_cannot_be_removed_nor_one_that_goes_be_reconfigured() -> None:
    deployment = upgrading()
    with pytest.raises(InvalidTransitionError):
        deployment.record_machine_removed("web1", "pm")
    with pytest.raises(InvalidTransitionError):
        deployment.record_machine_reconfigured("db1", power_cycled=False, actor="pm")


def test_a_failed_upgrade_leaves_a_deployed_deployment_at_its_old_version_without_unbuilt_machines() -> None:
    deployment = upgrading()
    deployment.record_machine_removed("db1", "pm")
    deployment.record_upgrade_failure("InsufficientResourcesFault", "pm")
    assert (deployment.state, deployment.configuration_version) == ("deployed", 3)
    assert deployment.failure == "InsufficientResourcesFault"
    assert [m["name"] for m in deployment.machines] == ["web1"]


def test_only_a_deployed_deployment_upgrades_and_not_to_its_own_version() -> None:
    with pytest.raises(InvalidTransitionError, match="already runs version 3"):
        given_deployed().request_upgrade(3, [], V4, "bob", None)
    deployment = upgrading()
    with pytest.raises(InvalidTransitionError):
        deployment.request_upgrade(5, [], V4, "bob", None)
    with pytest.raises(InvalidTransitionError):
        deployment.request_undeploy("bob", None)


def test_whole_deployment_power_queues_one_action_on_the_machines_it_changes() -> None:
    deployment = given_deployed()
    with pytest.raises(ValidationError) as refused:
        deployment.request_deployment_power("reset", "bob", None)
    assert refused.value.field == "action"
    with pytest.raises(InvalidTransitionError, match="already powered on"):
        deployment.request_deployment_power("on", "bob", None)
    assert deployment.request_deployment_power("off", "bob", "night") == ["web1", "db1"]
    assert [m["power_pending"] for m in deployment.machines] == [["off"], ["off"]]
    with pytest.raises(InvalidTransitionError, match="pending"):
        deployment.request_deployment_power("off", "bob", None)
    with pytest.raises(InvalidTransitionError, match="pending"):
        deployment.request_upgrade(4, [], V4, "bob", None)
