"""Previews of promote, swap and upgrade at the application's level, on every persistence: what
changes where the deployment lands, refused for the command's own reasons, nothing written."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.errors import InvalidTransitionError, ValidationError
from tests.fencing import three_tier
from tests.support import machine, stages

NETWORKS = [{"name": "front"}]


def deployed(runtime: Runtime, configuration_id: UUID, stage: str, version: int | None = None) -> UUID:
    deployment_id = runtime.app.deploy(configuration_id, stage, actor="alice", configuration_version=version).value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def shop(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("shop", "", stages("int", "prod"), actor="a").value
    configuration_id = runtime.app.create_configuration(
        service.id, "shop", "", NETWORKS, [machine("db"), machine("web")], actor="a"
    ).value.id
    return configuration_id


def test_promote_preview_compares_with_what_runs_in_the_next_stage(runtime: Runtime) -> None:
    configuration_id = shop(runtime)
    in_prod = deployed(runtime, configuration_id, "prod")
    runtime.app.change_machine(configuration_id, "web", machine("web", cpus=4), actor="a")
    runtime.app.add_machine(configuration_id, machine("cache"), actor="a")
    runtime.app.remove_machine(configuration_id, "db", actor="a")
    candidate = deployed(runtime, configuration_id, "int")
    head = runtime.app.head()
    answer = runtime.app.move_preview(candidate, "promote")
    assert runtime.app.head() == head  # a preview writes nothing
    assert answer["target_stage"] == "prod"
    assert answer["running_now"]["id"] == str(in_prod)
    assert answer["machines"]["added"] == ["cache"]
    assert answer["machines"]["removed"] == ["db"]
    assert answer["machines"]["changed"] == {"web": {"cpus": [2, 4]}}
    assert {v["machine"]: v["action"] for v in answer["vms"]} == {"web": "move", "cache": "move"}
    changed = {a["machine"] for a in answer["addresses"]}
    assert changed == {"web", "cache"}  # int's addresses differ from prod's


def test_promote_preview_of_the_last_stage_is_refused_like_the_promote(runtime: Runtime) -> None:
    in_prod = deployed(runtime, shop(runtime), "prod")
    with pytest.raises(InvalidTransitionError):
        runtime.app.move_preview(in_prod, "promote")


def test_upgrade_preview_says_which_vms_are_reconfigured_cloned_or_destroyed(runtime: Runtime) -> None:
    configuration_id = shop(runtime)
    deployment_id = deployed(runtime, configuration_id, "int")
    runtime.app.change_machine(configuration_id, "web", machine("web", memory_mib=4096), actor="a")
    runtime.app.change_machine(configuration_id, "db", machine("db", template="tpl-windows-2022", os_family="windows"),
                               actor="a")  # fmt: skip
    runtime.app.add_machine(configuration_id, machine("cache"), actor="a")
    answer = runtime.app.upgrade_preview(deployment_id, 4)
    assert (answer["from_version"], answer["to_version"]) == (1, 4)
    actions = {v["machine"]: v["action"] for v in answer["vms"]}
    assert actions == {"web": "reconfigure", "db": "rebuild", "cache": "clone"}
    assert answer["machines"]["changed"]["web"] == {"memory_mib": [2048, 4096]}
    with pytest.raises(ValidationError):
        runtime.app.upgrade_preview(deployment_id, 9)
    with pytest.raises(InvalidTransitionError):
        runtime.app.upgrade_preview(deployment_id, 1)


def test_swap_preview_of_a_fenced_copy_keeps_production_addresses(runtime: Runtime) -> None:
    production = deployed(runtime, three_tier(runtime), "prod")
    copy_id = runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    answer = runtime.app.swap_preview(copy_id, None, keep_previous=True)
    assert answer["target_stage"] == "prod"
    assert answer["running_now"]["id"] == str(production)
    assert answer["addresses"] == []  # a fenced copy keeps the IPs and MACs it copied
    actions = sorted({v["action"] for v in answer["vms"]})
    assert actions == ["move", "power-off"]
    with pytest.raises(ValidationError):
        runtime.app.swap_preview(production, None)
