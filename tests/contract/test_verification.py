"""Verification after a promote, on every persistence, against a listener on this machine (the
machines' stage addresses are loopback addresses, so the real network prober reaches it): passes,
fails and rolls back with a moved clock, and never undoes a deliberate demote."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.errors import ValidationError
from tests.fencing import THREE_TIER, fenced_stage
from tests.support import ROOT_POOL, machine

LOOPBACK_POOL = [{"cidr": "127.0.9.0/24", "gateway": "127.0.9.1", "dns": []}]


class Listener:
    """An HTTP server on every address of this machine answering `status`."""

    def __init__(self) -> None:
        self.status = 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)  # noqa: S104 (loopback addresses)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


def shop(runtime: Runtime, port: int, rollback: bool = True) -> UUID:
    stages = [
        {"name": n, "resource_pool": f"{ROOT_POOL}/{n}-pool", "restricted": False, "ip_pools": LOOPBACK_POOL}
        for n in ("int",)
    ] + [{"name": "prod", "resource_pool": f"{ROOT_POOL}/prod-pool", "restricted": False}]
    service = runtime.app.register_service("shop", "", stages, actor="a").value
    runtime.app.update_stage(
        service.id, "prod",
        {"verification": {"checks": [{"kind": "http", "port": port, "path": "/health"}, {"kind": "tcp", "port": port}],
                          "deadline_seconds": 30, "rollback": rollback}},
        actor="a",
    )  # fmt: skip
    configuration_id = runtime.app.create_configuration(
        service.id, "shop", "", [{"name": "front"}], [machine("web")], actor="a"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    return deployment_id


def promoted(runtime: Runtime, deployment_id: UUID) -> dict[str, Any]:
    runtime.app.promote(deployment_id, actor="alice")
    runtime.catch_up()
    verification = runtime.app.deployment(deployment_id).verification
    assert verification is not None
    return verification


def test_a_promote_whose_checks_answer_is_verified(runtime: Runtime, listener: Listener) -> None:
    deployment_id = shop(runtime, listener.port)
    verification = promoted(runtime, deployment_id)
    assert verification["state"] == "passed"
    assert [r["check"] for r in verification["results"]] == ["http", "tcp"]
    assert verification["results"][0]["target"].startswith("http://127.0.9.")
    runtime.catch_up()
    rows = runtime.store.query(
        "SELECT summary FROM sk_audit WHERE aggregate_id = %s AND event_type = %s",
        (str(deployment_id), "Deployment.VerificationPassed"),
    )
    assert [r["summary"] for r in rows] == ["verification passed (2 result(s))"]


def test_a_failing_check_rolls_back_when_the_deadline_passes(runtime: Runtime, listener: Listener) -> None:
    deployment_id = shop(runtime, listener.port)
    listener.status = 503
    verification = promoted(runtime, deployment_id)
    assert verification["state"] == "running"  # the process manager did not wait for the deadline
    runtime.process.verification.recheck_all(runtime.read_models.verifying_ids())
    assert runtime.app.deployment(deployment_id).verification["state"] == "running"  # type: ignore[index]
    runtime.clock.advance(seconds=31)  # type: ignore[attr-defined]
    runtime.catch_up()
    runtime.process.verification.recheck_all(runtime.read_models.verifying_ids())
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.verification is not None
    assert deployment.verification["state"] == "failed"
    assert deployment.verification["rolled_back"] == "demote"
    http_result = deployment.verification["results"][0]
    assert (http_result["ok"], http_result["detail"]) == (False, "status 503, expected 200")
    assert deployment.verification["results"][1]["ok"] is True  # the port itself is open
    assert (deployment.stage, deployment.state) == ("int", "deployed")


def test_a_check_that_recovers_before_the_deadline_passes(runtime: Runtime, listener: Listener) -> None:
    deployment_id = shop(runtime, listener.port)
    listener.status = 500
    promoted(runtime, deployment_id)
    listener.status = 200
    runtime.clock.advance(seconds=10)  # type: ignore[attr-defined]
    runtime.process.verification.recheck_all([deployment_id])
    assert runtime.app.deployment(deployment_id).verification["state"] == "passed"  # type: ignore[index]


def test_a_deliberate_demote_during_verification_is_never_undone(runtime: Runtime, listener: Listener) -> None:
    deployment_id = shop(runtime, listener.port)
    listener.status = 500
    promoted(runtime, deployment_id)
    runtime.app.demote(deployment_id, actor="alice", reason="not today")
    runtime.catch_up()
    runtime.clock.advance(seconds=60)  # type: ignore[attr-defined]
    runtime.process.verification.recheck_all([deployment_id])
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.verification is not None
    assert (deployment.verification["state"], deployment.verification["rolled_back"]) == ("failed", None)
    assert (deployment.stage, deployment.state) == ("int", "deployed")


def test_without_rollback_a_failure_is_recorded_and_the_deployment_stays(runtime: Runtime) -> None:
    deployment_id = shop(runtime, 9, rollback=False)  # nothing listens on port 9 (discard)
    promoted(runtime, deployment_id)
    runtime.clock.advance(seconds=31)  # type: ignore[attr-defined]
    runtime.process.verification.recheck_all([deployment_id])
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.verification is not None
    assert (deployment.verification["state"], deployment.verification["rolled_back"]) == ("failed", None)
    assert deployment.stage == "prod"


def test_verification_settings_are_checked(runtime: Runtime) -> None:
    service = runtime.app.register_service("s", "", [{"name": "a", "resource_pool": f"{ROOT_POOL}/a-pool"}], "x")
    for bad, field in (
        ({"checks": [{"kind": "ping"}]}, "verification.checks[0].kind"),
        ({"checks": [{"kind": "tcp", "port": 70000}]}, "verification.checks[0].port"),
        ({"checks": [{"kind": "http", "path": "no-slash"}]}, "verification.checks[0].path"),
        ({"checks": [{"kind": "tools"}], "deadline_seconds": 1}, "verification.deadline_seconds"),
        ({"checks": [{"kind": "tools"}] * 11}, "verification.checks"),
    ):
        with pytest.raises(ValidationError) as refused:
            runtime.app.update_stage(service.value.id, "a", {"verification": bad}, actor="x")
        assert refused.value.field == field


def test_a_swap_whose_checks_fail_swaps_back_and_the_swap_back_is_not_verified(
    runtime: Runtime, listener: Listener
) -> None:
    service = runtime.app.register_service(
        "shop", "", [fenced_stage("test", 100, "127.0.61.0/24"), fenced_stage("prod", 300, "127.0.62.0/24")], "a"
    ).value
    checks = {"checks": [{"kind": "tcp", "port": listener.port}], "deadline_seconds": 30, "rollback": True}
    runtime.app.update_stage(service.id, "prod", {"verification": checks}, actor="a")
    networks = [{"name": "front"}, {"name": "back"}]
    configuration_id = runtime.app.create_configuration(service.id, "shop", "", networks, THREE_TIER, "a").value.id
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(production).verification is None  # a plain deploy is not verified
    copy_id = runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    listener.close()  # the new release answers nothing
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=True)
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).verification["state"] == "running"  # type: ignore[index]
    runtime.clock.advance(seconds=31)  # type: ignore[attr-defined]
    runtime.process.verification.recheck_all(runtime.read_models.verifying_ids())
    runtime.catch_up()
    copy, previous = runtime.app.deployment(copy_id), runtime.app.deployment(production)
    assert copy.verification is not None
    assert (copy.verification["state"], copy.verification["rolled_back"]) == ("failed", "swap-back")
    assert previous.replaced is not None  # production took its place back
    assert previous.stage == "prod"
    assert previous.verification is None  # a swap-back is a rollback: never verified, never undone


def test_a_copy_and_an_upgrade_into_a_verified_stage_are_verified(runtime: Runtime) -> None:
    deployment_id = shop(runtime, 9)
    service_id = runtime.app.deployment(deployment_id).service_id
    tools = {"checks": [{"kind": "tools"}], "deadline_seconds": 30}
    runtime.app.update_stage(service_id, "int", {"verification": tools}, actor="a")
    copy_id = runtime.app.copy_deployment(deployment_id, "int", actor="bob").value.id
    runtime.catch_up()
    copied = runtime.app.deployment(copy_id).verification
    assert copied is not None
    assert (copied["after"], copied["state"]) == ("copy", "passed")
    configuration_id = runtime.app.deployment(deployment_id).configuration_id
    runtime.app.change_machine(configuration_id, "web", machine("web", cpus=4), actor="a")
    runtime.app.upgrade_deployment(deployment_id, 2, actor="a")
    runtime.catch_up()
    upgraded = runtime.app.deployment(deployment_id).verification
    assert upgraded is not None
    assert (upgraded["after"], upgraded["state"], upgraded["results"][0]["check"]) == ("upgrade", "passed", "tools")
