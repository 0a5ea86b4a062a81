"""A lease expiring under a moved clock on vcsim (PostgreSQL): warned first, then undeployed, VMs gone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.runtime import Runtime
from domain.errors import ConflictError
from scripts.vcsim_harness import Vcsim
from tests.support import FixedClock, machine, postgres_schema, settings_for, stages

POOL = {"cidr": "10.61.0.0/24", "gateway": "10.61.0.1", "dns": ["10.61.0.2"], "first": "10.61.0.10"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def runtime(vcsim: Vcsim, clock: FixedClock) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = Runtime(settings_for(url), vcenter=vcsim.driver(task_timeout=1.5), clock=clock)
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def test_a_lease_warns_then_undeploys_and_the_vms_are_gone_from_vcenter(runtime: Runtime, clock: FixedClock) -> None:
    service_id = runtime.app.register_service("payroll", "", stages("int"), actor="alice").value.id
    runtime.app.update_stage(
        service_id, "int", {"ip_pools": [POOL], "lease_policy": {"default": "P1D", "warning": "PT2H"}}, actor="alice"
    )
    configuration_id = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], [machine("web1"), machine("db1")], actor="alice"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    kept_id = runtime.app.deploy(configuration_id, "int", actor="alice", lease="P3D").value.id
    runtime.catch_up()
    assert len(runtime.vcenter.find_vms(deployment_id)) == 2
    scheduler = runtime.lease_workers.scheduler
    clock.advance(hours=23)
    runtime.catch_up()
    assert [(s.deployment_id, s.due.action) for s in scheduler.tick()] == [(str(deployment_id), "warn")]
    runtime.catch_up()
    assert len(runtime.vcenter.find_vms(deployment_id)) == 2  # a warning only
    # The other one is extended at the last moment before its own expiry: it stays.
    clock.advance(days=2, hours=0, minutes=59)
    runtime.app.change_lease(kept_id, {"extend_by": "P1D"}, actor="alice", reason="still testing")
    clock.advance(minutes=2)
    runtime.catch_up()
    steps = scheduler.tick()
    assert (str(deployment_id), "expire") in [(s.deployment_id, s.due.action) for s in steps]
    assert str(kept_id) not in [s.deployment_id for s in steps if s.due.action == "expire"]
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "undeployed"
    assert runtime.vcenter.find_vms(deployment_id) == []
    assert len(runtime.vcenter.find_vms(kept_id)) == 2
    with pytest.raises(ConflictError):
        runtime.app.change_lease(deployment_id, {"extend_by": "P1D"}, actor="alice")
