"""Configurations: versioned definitions, on every persistence."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.errors import ConflictError, NotFoundError, ValidationError
from tests.support import THREE_TIER, machine, stages


@pytest.fixture
def service_id(runtime: Runtime) -> UUID:
    return runtime.app.register_service("payroll", "", stages("int", "test"), actor="alice").value.id


def create(runtime: Runtime, service_id: UUID, name: str = "p3") -> UUID:
    return runtime.app.create_configuration(
        service_id, name, "", [{"name": "front"}], THREE_TIER, actor="alice", reason="first cut"
    ).value.id


def test_every_change_is_a_new_version_and_old_versions_stay_readable(runtime: Runtime, service_id: UUID) -> None:
    app = runtime.app
    configuration_id = create(runtime, service_id)
    app.add_machine(configuration_id, machine("web3"), actor="bob")
    app.change_machine(configuration_id, "web1", machine("web1", cpus=8), actor="bob")
    app.remove_machine(configuration_id, "app1", actor="carol")
    app.add_network(configuration_id, {"name": "back"}, actor="carol")
    latest = app.configuration(configuration_id)
    assert latest.version == 5
    assert [m["name"] for m in latest.machines] == ["web1", "web2", "db1", "web3"]
    assert latest.machine("web1")["cpus"] == 8
    first = app.configuration(configuration_id, version=1)
    assert [m["name"] for m in first.machines] == ["web1", "web2", "app1", "db1"]
    assert first.machine("web1")["cpus"] == 2
    assert [n["name"] for n in app.configuration(configuration_id, version=4).networks] == ["front"]


def test_machines_may_only_use_catalogue_templates_with_a_matching_os(runtime: Runtime, service_id: UUID) -> None:
    with pytest.raises(ValidationError) as error:
        runtime.app.create_configuration(
            service_id, "c", "", [{"name": "front"}], [machine("a", template="nope")], actor="a"
        )
    assert error.value.field == "machines[0].template"
    with pytest.raises(ValidationError) as error:
        runtime.app.create_configuration(
            service_id, "c", "", [{"name": "front"}], [machine("a", template="tpl-windows-2022")], actor="a"
        )
    assert error.value.field == "machines[0].customization.os"


def test_definition_rules_name_the_offending_field(runtime: Runtime, service_id: UUID) -> None:
    app = runtime.app
    cases: list[tuple[list[dict[str, object]], list[dict[str, object]], str]] = [
        ([{"name": "front"}], [machine("a", nics=[{"network": "back"}])], "machines[0].nics[0].network"),
        ([{"name": "front"}], [machine("a"), machine("A")], "machines[1].name"),
        ([{"name": "front"}, {"name": "FRONT"}], [], "networks[1].name"),
        ([{"name": "front"}], [machine("a", cpus=0)], "machines[0].cpus"),
        ([{"name": "front"}], [machine("a", memory_mib=1023)], "machines[0].memory_mib"),
        ([{"name": "front"}], [machine("a", clone_mode="instant")], "machines[0].clone_mode"),
        ([{"name": "front"}], [machine("-bad")], "machines[0].name"),
        ([{"name": "front"}], [machine("a", disks=[{"size_gib": 0}])], "machines[0].disks[0].size_gib"),
    ]
    for networks, machines, field in cases:
        with pytest.raises(ValidationError) as error:
            app.create_configuration(service_id, "c", "", networks, machines, actor="a")
        assert error.value.field == field, (field, error.value.message)
    windows = machine("a", template="tpl-windows-2022", customization={"os": "windows", "hostname": "x" * 16})
    with pytest.raises(ValidationError) as error:
        app.create_configuration(service_id, "c", "", [{"name": "front"}], [windows], actor="a")
    assert error.value.field == "machines[0].customization.hostname"
    assert runtime.read_models.configurations(str(service_id)) == []


def test_names_are_unique_within_a_service_only(runtime: Runtime, service_id: UUID) -> None:
    create(runtime, service_id, "p3")
    with pytest.raises(ConflictError):
        create(runtime, service_id, "P3")
    other = runtime.app.register_service("hr", "", stages("int", pools="hr-"), actor="a").value.id
    create(runtime, other, "p3")


def test_renaming_frees_the_old_name(runtime: Runtime, service_id: UUID) -> None:
    configuration_id = create(runtime, service_id, "old")
    runtime.app.revise_configuration(configuration_id, {"name": "new"}, actor="a")
    assert runtime.app.configuration(configuration_id).name == "new"
    create(runtime, service_id, "old")
    with pytest.raises(ConflictError):
        create(runtime, service_id, "new")


def test_revise_replaces_machines_in_one_version(runtime: Runtime, service_id: UUID) -> None:
    configuration_id = create(runtime, service_id)
    outcome = runtime.app.revise_configuration(
        configuration_id, {"description": "smaller", "machines": [machine("solo")]}, actor="a"
    )
    assert outcome.value.version == 2
    assert [m["name"] for m in outcome.value.machines] == ["solo"]


def test_a_network_in_use_cannot_be_removed(runtime: Runtime, service_id: UUID) -> None:
    configuration_id = create(runtime, service_id)
    with pytest.raises(ConflictError, match="used by"):
        runtime.app.remove_network(configuration_id, "front", actor="a")
    with pytest.raises(NotFoundError):
        runtime.app.remove_machine(configuration_id, "ghost", actor="a")


def test_restore_brings_back_an_old_version_as_a_new_version(runtime: Runtime, service_id: UUID) -> None:
    app = runtime.app
    configuration_id = create(runtime, service_id)
    app.remove_machine(configuration_id, "web2", actor="a")
    app.revise_configuration(configuration_id, {"name": "renamed"}, actor="a")
    restored = app.restore_configuration(configuration_id, 1, actor="b", reason="roll back").value
    assert restored.version == 4
    assert restored.definition() == app.configuration(configuration_id, version=1).definition()
    undone = app.restore_configuration(configuration_id, 3, actor="b", reason="undo the restore").value
    assert undone.definition() == app.configuration(configuration_id, version=3).definition()
    with pytest.raises(ValidationError):
        app.restore_configuration(configuration_id, 99, actor="b")


def test_configurations_need_a_live_service(runtime: Runtime, service_id: UUID) -> None:
    runtime.app.retire_service(service_id, actor="a")
    with pytest.raises(ConflictError, match="retired"):
        create(runtime, service_id)
    with pytest.raises(NotFoundError):
        create(runtime, UUID(int=7))
