"""Cross-aggregate rules hold when another command commits between a decision and its write:
the rival's write is run exactly there, so the race is lost every time, not by luck."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.runtime import Runtime
from domain.errors import ConflictError
from tests.support import ROOT_POOL, machine, stages

POOL = {"cidr": "10.40.0.0/24", "gateway": "10.40.0.1"}


def rival_commits_first(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, rival: Callable[[], Any]) -> None:
    """The next commit runs `rival` (a whole command) just before writing, once."""
    original = runtime.app.commit
    pending = [rival]

    def commit(*aggregates: Any) -> int:
        if pending:
            pending.pop()()
        return original(*aggregates)

    monkeypatch.setattr(runtime.app, "commit", commit)


def test_a_pool_taken_by_a_rival_between_read_and_write_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = runtime.app
    contested = [{"name": "dev", "resource_pool": f"{ROOT_POOL}/contested"}]
    rival_commits_first(runtime, monkeypatch, lambda: app.register_service("hr", "", contested, actor="b"))
    with pytest.raises(ConflictError, match="stage 'dev' of service 'hr'"):
        app.register_service("payroll", "", [{"name": "int", "resource_pool": f"{ROOT_POOL}/contested"}], actor="a")
    runtime.catch_up()
    assert [s["name"] for s in runtime.read_models.services()] == ["hr"]


def test_a_pool_under_one_taken_by_a_rival_between_read_and_write_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = runtime.app
    payroll = app.register_service("payroll", "", stages("int", pools="p-"), actor="a").value.id
    nested = [{"name": "dev", "resource_pool": f"{ROOT_POOL}/team/hr"}]
    rival_commits_first(runtime, monkeypatch, lambda: app.register_service("hr", "", nested, actor="b"))
    expected = f"holds resource pool '{ROOT_POOL}/team/hr' of stage 'dev' of service 'hr'"
    with pytest.raises(ConflictError, match=expected):
        app.add_stage(payroll, {"name": "test", "resource_pool": f"{ROOT_POOL}/team"}, None, actor="a")
    assert [s["name"] for s in app.service(payroll).stages] == ["int"]


def test_an_ip_range_taken_by_a_rival_between_read_and_write_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = runtime.app
    payroll = app.register_service("payroll", "", stages("int", pools="p-"), actor="a").value.id
    hr = app.register_service("hr", "", stages("dev", pools="h-"), actor="b").value.id
    rival_commits_first(runtime, monkeypatch, lambda: app.update_stage(hr, "dev", {"ip_pools": [POOL]}, actor="b"))
    with pytest.raises(ConflictError, match="stage 'dev' of service 'hr'"):
        app.update_stage(payroll, "int", {"ip_pools": [{**POOL, "first": "10.40.0.100"}]}, actor="a")
    assert app.service(payroll).stage("int")["ip_pools"] == []
    assert app.service(hr).stage("dev")["ip_pools"][0]["cidr"] == POOL["cidr"]


def test_a_deploy_committed_between_read_and_write_stops_the_retirement(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = runtime.app
    service = app.register_service("payroll", "", stages("int"), actor="a").value.id
    configuration = app.create_configuration(service, "c", "", [{"name": "front"}], [machine("web1")], "a").value.id
    deployed: list[str] = []
    rival_commits_first(
        runtime, monkeypatch, lambda: deployed.append(str(app.deploy(configuration, "int", actor="b").value.id))
    )
    with pytest.raises(ConflictError, match="live deployment") as refused:
        app.retire_configuration(configuration, actor="a", reason="obsolete")
    assert deployed[0] in refused.value.message
    assert app.configuration(configuration).retired is False
