"""Services and stages, on every persistence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ValidationError,
)
from domain.permissions import Caller, can_manage
from domain.ports import PoolStatus
from domain.service import Service
from tests.support import ROOT_POOL, THREE_TIER, stages


def register(runtime: Runtime, name: str = "payroll") -> str:
    return str(runtime.app.register_service(name, "Payroll", stages("int", "test", "prod"), actor="alice").value.id)


def test_registered_service_keeps_its_stages_in_order_and_who_registered_it(runtime: Runtime) -> None:
    service = runtime.app.register_service("Payroll", "pay", stages("int", "test"), actor="alice").value
    loaded = runtime.app.service(service.id)
    assert [s["name"] for s in loaded.stages] == ["int", "test"]
    assert loaded.registered_by == "alice"
    assert loaded.version == 1


def test_service_names_are_unique_ignoring_case(runtime: Runtime) -> None:
    register(runtime, "Payroll")
    with pytest.raises(ConflictError, match="already taken"):
        register(runtime, "PAYROLL")


def test_an_unknown_datacenter_or_cluster_is_refused_naming_the_field(runtime: Runtime) -> None:
    bad_dc = [{"name": "int", "resource_pool": "/DC9/host/DC0_C0/Resources/x"}]
    with pytest.raises(ValidationError) as error:
        runtime.app.register_service("a", "", bad_dc, actor="alice")
    assert error.value.field == "stages[0].resource_pool"
    assert "DC9" in error.value.message
    bad_cluster = [{"name": "int", "resource_pool": "/DC0/host/NOPE/Resources/x"}]
    with pytest.raises(ValidationError, match="cluster 'NOPE'"):
        runtime.app.register_service("a", "", bad_cluster, actor="alice")
    assert runtime.read_models.services() == []


def test_a_missing_pool_under_a_known_cluster_is_created_and_recorded(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    service_id = register(runtime)
    runtime.catch_up()
    assert vcenter.inspect_pool(f"{ROOT_POOL}/prod-pool") is PoolStatus.EXISTS
    topics = [n.topic for n in runtime.app.select_notifications(1, 1000)]
    assert topics.count("stagekeeper:Service.ResourcePoolCreated") == 3
    service = runtime.app.service(UUID(service_id))
    assert (service.version, service.definition_version) == (4, 1)


def test_stages_can_be_added_renamed_reordered_and_removed(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("s", "", stages("int", "prod"), actor="a").value.id
    app = runtime.app
    app.add_stage(service_id, {"name": "test", "resource_pool": f"{ROOT_POOL}/t"}, 1, actor="a")
    assert [s["name"] for s in app.service(service_id).stages] == ["int", "test", "prod"]
    app.update_stage(service_id, "TEST", {"name": "qa", "restricted": True}, actor="a")
    assert app.service(service_id).stage("qa")["restricted"] is True
    app.reorder_stages(service_id, ["qa", "int", "prod"], actor="a")
    assert [s["name"] for s in app.service(service_id).stages] == ["qa", "int", "prod"]
    app.remove_stage(service_id, "qa", actor="a")
    assert [s["name"] for s in app.service(service_id).stages] == ["int", "prod"]


def test_stage_rules_are_enforced(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("s", "", stages("int", "prod"), actor="a").value.id
    app = runtime.app
    with pytest.raises(ConflictError, match="already has a stage"):
        app.add_stage(service_id, {"name": "INT", "resource_pool": f"{ROOT_POOL}/x"}, None, actor="a")
    with pytest.raises(ValidationError) as error:
        app.reorder_stages(service_id, ["int"], actor="a")
    assert error.value.field == "order"
    with pytest.raises(NotFoundError):
        app.remove_stage(service_id, "nope", actor="a")
    with pytest.raises(ValidationError) as error:
        app.update_stage(service_id, "int", {"colour": "red"}, actor="a")
    assert error.value.field == "colour"
    with pytest.raises(ValidationError):
        app.register_service("t", "", [stages("a")[0], stages("a")[0]], actor="a")


def test_a_stage_holding_a_live_deployment_cannot_be_removed_until_undeployed(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("s", "", stages("int", "prod"), actor="a").value.id
    configuration = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], THREE_TIER[:1], actor="a"
    ).value
    deployment = runtime.app.deploy(configuration.id, "prod", actor="a").value
    runtime.catch_up()
    with pytest.raises(ConflictError, match="live deployment"):
        runtime.app.remove_stage(service_id, "prod", actor="a")
    with pytest.raises(ConflictError, match="live deployment"):
        runtime.app.retire_service(service_id, actor="a")
    runtime.app.undeploy(deployment.id, actor="a")
    runtime.catch_up()
    runtime.app.remove_stage(service_id, "prod", actor="a")
    assert [s["name"] for s in runtime.app.service(service_id).stages] == ["int"]


def test_a_retired_service_refuses_changes_and_frees_its_name(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("payroll", "", stages("int"), actor="a").value.id
    runtime.app.retire_service(service_id, actor="a", reason="decommissioned")
    with pytest.raises(InvalidTransitionError, match="retired"):
        runtime.app.update_service(service_id, "x", actor="a")
    again = runtime.app.register_service("Payroll", "", stages("int"), actor="a").value
    assert again.id != service_id


def test_a_stale_expected_version_is_refused_and_nothing_is_written(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("s", "", stages("int"), actor="a").value.id
    runtime.app.update_service(service_id, "one", actor="a", expected_version=1)
    head = runtime.app.head()
    with pytest.raises(PreconditionFailedError):
        runtime.app.update_service(service_id, "two", actor="a", expected_version=1)
    assert runtime.app.head() == head
    assert runtime.app.service(service_id).description == "one"


def _owner_check(runtime: Runtime, revoke_first: str | None, reads: list[int]) -> Callable[[Service], None]:
    """A permission check (what the API passes as `authorize`) for olivia, an owner by a user grant.
    With `revoke_first`, another request withdraws that grant just after the command's first read."""

    def authorize(service: Service) -> None:
        reads.append(service.version)
        if revoke_first is not None and len(reads) == 1:
            runtime.app.revoke_grant(service.id, revoke_first, actor="alice")
        if not can_manage(list(service.grants.values()), Caller("olivia", frozenset())):
            raise PermissionDeniedError("olivia is not an owner of the service")

    return authorize


def test_a_checked_command_reads_the_service_once(runtime: Runtime) -> None:
    service_id = UUID(register(runtime))
    runtime.app.grant_role(service_id, "service-owner", "olivia", None, None, actor="alice")
    asked: list[UUID] = []
    get = runtime.app.repository.get

    def counting_get(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        asked.append(aggregate_id)
        return get(aggregate_id, *args, **kwargs)

    runtime.app.repository.get = counting_get  # type: ignore[method-assign]
    reads: list[int] = []
    runtime.app.update_service(service_id, "new words", actor="olivia", authorize=_owner_check(runtime, None, reads))
    runtime.app.repository.get = get  # type: ignore[method-assign]
    assert asked.count(service_id) == 1
    assert len(reads) == 1
    assert runtime.app.service(service_id).description == "new words"


def test_a_grant_withdrawn_while_a_command_runs_refuses_it_on_the_retry(runtime: Runtime) -> None:
    service_id = UUID(register(runtime))
    grant = runtime.app.grant_role(service_id, "service-owner", "olivia", None, None, actor="alice").value
    reads: list[int] = []
    with pytest.raises(PermissionDeniedError, match="not an owner"):
        runtime.app.update_service(
            service_id, "new words", actor="olivia", authorize=_owner_check(runtime, grant["id"], reads)
        )
    # The first attempt lost its race to the revocation; the fresh read it retried with was refused.
    assert len(reads) == 2
    assert reads[1] > reads[0]
    assert runtime.app.service(service_id).description == "Payroll"
