"""Upgrade in place of a fenced deployment on vcsim (DVS0, pyvmomi driver, PostgreSQL): the same
checks as the contract suite's, with the port groups and NIC backings as vCenter reports them.
vcsim does not refuse to destroy a port group in use (real vCenter does), so that the dropped
network's port group goes only after its machines and the gateway left it is read from the events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.runtime import Runtime
from scripts.vcsim_harness import Vcsim
from tests.contract.test_fenced_upgrades import check_fenced_upgrade, fenced_v1_then_v2
from tests.support import postgres_schema, runtime_for


@pytest.fixture
def runtime(vcsim: Vcsim) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver(task_timeout=5))
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def test_a_fenced_upgrade_on_vcsim_adds_and_drops_port_groups_around_the_machines(runtime: Runtime) -> None:
    _, deployment_id = fenced_v1_then_v2(runtime)
    check_fenced_upgrade(runtime, runtime.vcenter, deployment_id)
