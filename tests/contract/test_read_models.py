"""Read models, restarts and rebuilds, on every persistence."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import UnavailableError
from projections.store import Row, set_tracking, set_trackings, tracking_positions
from tests.support import THREE_TIER, runtime_for, stages


def populate(runtime: Runtime) -> tuple[UUID, UUID, UUID]:
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int", "test"), actor="a").value.id
    app.register_service("hr", "", stages("int", pools="hr-"), actor="a")
    configuration_id = app.create_configuration(
        service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value.id
    app.add_network(configuration_id, {"name": "back"}, actor="a")
    deployment_id = app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    app.promote(deployment_id, actor="a")
    runtime.catch_up()
    return service_id, configuration_id, deployment_id


def snapshot(runtime: Runtime) -> dict[str, list[Row]]:
    return {
        table: runtime.store.query(f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608
        for projection in runtime.projections
        for table in projection.tables
    }


def test_lists_reflect_the_commands(runtime: Runtime) -> None:
    service_id, _configuration_id, _deployment_id = populate(runtime)
    assert [s["name"] for s in runtime.read_models.services()] == ["hr", "payroll"]
    [configuration] = runtime.read_models.configurations(str(service_id))
    assert (configuration["name"], configuration["machines"], configuration["networks"]) == ("p3", 4, 2)
    assert configuration["version"] == 2
    [deployment] = runtime.read_models.deployments(service_id=str(service_id))
    assert (deployment["stage"], deployment["state"]) == ("test", "deployed")
    assert {m["resource_pool"] for m in deployment["machines"]} == {"/DC0/host/DC0_C0/Resources/test-pool"}
    assert runtime.read_models.deployments(service_id=str(service_id), stage="int") == []
    assert runtime.read_models.position("deployments") == runtime.app.head()


def test_a_rebuild_from_position_zero_gives_identical_tables(runtime: Runtime) -> None:
    populate(runtime)
    before = snapshot(runtime)
    for projection in runtime.projections:
        runtime.projection_follower.rebuild(projection.name)
    assert snapshot(runtime) == before


def test_reading_your_own_write_waits_for_the_projection_then_gives_up_clearly(runtime: Runtime) -> None:
    position = runtime.app.register_service("s", "", stages("int"), actor="a").position
    with pytest.raises(UnavailableError, match="did not reach"):
        runtime.read_models.wait("services", position, timeout=0.05)
    runtime.start_workers(process_manager=False)
    assert runtime.read_models.wait("services", position, timeout=5) >= position
    assert [s["name"] for s in runtime.read_models.services()] == ["s"]


def test_a_second_start_on_the_same_database_keeps_everything(database_url: str) -> None:
    if database_url == "memory://":
        pytest.skip("the in-memory store is meant to forget")
    vcenter = SimulatedVCenter()
    first = runtime_for(database_url, vcenter=vcenter)
    first.app.import_templates(None, True, actor="a")
    _service_id, configuration_id, deployment_id = populate(first)
    tables = snapshot(first)
    first.close()
    second = runtime_for(database_url, vcenter=vcenter)
    second.catch_up()
    assert second.app.deployment(deployment_id).stage == "test"
    assert second.app.configuration(configuration_id).version == 2
    assert snapshot(second) == tables
    second.close()


def test_tracking_positions_are_read_and_moved_together_in_one_statement_each(runtime: Runtime) -> None:
    lock = runtime.store.dialect == "postgres"
    with runtime.store.transaction() as cursor:
        set_tracking(cursor, "t-one", 7)
        assert tracking_positions(cursor, ["t-two", "t-one"], for_update=lock) == {"t-two": 0, "t-one": 7}
        set_trackings(cursor, ["t-two", "t-one"], 12)
    with runtime.store.transaction() as cursor:
        assert tracking_positions(cursor, ["t-one", "t-two", "t-three"]) == {"t-one": 12, "t-two": 12, "t-three": 0}
        assert tracking_positions(cursor, []) == {}
