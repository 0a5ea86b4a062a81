"""The console's shared board follows changes deployment by deployment, and always equals the
board the API builds from scratch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from api.routes.board import board_document
from api.ui.boardcache import BoardCache
from tests.e2e.test_console_access import PRINCIPALS
from tests.support import THREE_TIER, postgres_schema, runtime_for, stages


@pytest.fixture(params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Runtime]:
    vcenter = SimulatedVCenter()
    if request.param == "sqlite":
        built = runtime_for(f"sqlite:///{tmp_path}/sk.db", vcenter=vcenter)
        built.app.import_templates(None, True, actor="setup")
        yield built
        built.close()
        return
    with postgres_schema() as url:
        built = runtime_for(url, vcenter=vcenter)
        built.app.import_templates(None, True, actor="setup")
        yield built
        built.close()


def from_scratch(runtime: Runtime) -> list[dict[str, Any]]:
    admin = PRINCIPALS["admin"]
    assert admin is not None
    services: list[dict[str, Any]] = board_document(runtime, admin, None, None, None)["services"]
    return services


def test_the_shared_board_applies_each_change_and_equals_the_api_board(runtime: Runtime) -> None:
    app, cache = runtime.app, BoardCache()
    admin = PRINCIPALS["admin"]
    assert admin is not None
    services = [
        app.register_service(f"svc-{i}", "", stages("int", "test", "prod", pools=f"s{i}-"), actor="a").value.id
        for i in range(3)
    ]
    configurations = [
        app.create_configuration(s, "c", "", [{"name": "front"}], THREE_TIER[:1], actor="a").value.id for s in services
    ]
    runtime.catch_up()
    assert cache.now(runtime, admin, None)["services"] == from_scratch(runtime)

    def step(change: Any) -> None:
        change()
        runtime.catch_up()
        assert cache.now(runtime, admin, None)["services"] == from_scratch(runtime)

    built = cache.live(runtime)
    first = app.deploy(configurations[0], "int", actor="a").value.id
    step(lambda: None)
    moved = cache.live(runtime)
    assert moved is not built
    assert moved.services[1] is built.services[1], "services no deployment touched are not rebuilt"
    assert moved.services[0] is not built.services[0]
    second = app.deploy(configurations[0], "int", actor="a").value.id
    step(lambda: app.deploy(configurations[2], "test", actor="a"))
    step(lambda: app.promote(first, actor="a"))
    assert isinstance(runtime.vcenter, SimulatedVCenter)
    runtime.vcenter.inject_fault("clone", "InsufficientResourcesFault: no room")
    failing = app.deploy(configurations[1], "prod", actor="a").value.id
    step(lambda: None)
    assert app.deployment(failing).state == "failed"
    step(lambda: app.undeploy(second, actor="a"))
    board = cache.now(runtime, admin, None)["services"]
    ids = [d["id"] for st in board[0]["stages"] for d in st["deployments"]]
    assert str(second) not in ids, "an undeployed deployment leaves the board"
    # A services change (a stage renamed, a service registered) lays the services out again
    # around the deployments already known: none is read again.
    known = cache.live(runtime).held[str(services[2])]
    step(lambda: app.update_stage(services[0], "test", {"name": "qa"}, actor="a"))
    assert cache.live(runtime).held[str(services[2])] is known
    step(lambda: app.register_service("svc-new", "", stages("int", pools="new-"), actor="a"))
    assert [s["name"] for s in cache.now(runtime, admin, None)["services"]][-1] == "svc-new"
    step(lambda: app.retry_deployment(failing, actor="a"))
    assert app.deployment(UUID(str(failing))).state == "deployed"
