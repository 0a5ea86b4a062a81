"""Webhooks over HTTP: a real local receiver gets each notification once, signed; a dead one slows nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.webhooks import WebhookDelivery
from api.app import create_app
from domain.notifications import verify
from tests.e2e.conftest import AUTH, free_port
from tests.support import THREE_TIER, FixedClock, settings_for, stages


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


def world(tmp_path: Path, clock: FixedClock, **settings: Any) -> tuple[Runtime, TestClient]:
    url = f"sqlite:///{tmp_path}/sk.db"
    runtime = Runtime(settings_for(url, **settings), vcenter=SimulatedVCenter(), clock=clock)
    runtime.ensure_admin()
    runtime.app.import_templates(None, True, actor="admin")
    client = TestClient(create_app(settings_for(url, **settings), runtime=runtime, start_workers=False))
    return runtime, client


def payroll(client: TestClient, runtime: Runtime) -> tuple[str, str]:
    service = client.post("/api/v1/services", json={"name": "payroll", "stages": stages("int")}, auth=AUTH).json()
    policy = {"lease_policy": {"default": "P2D", "maximum": "P10D", "warning": "P1D"}}
    changed = client.patch(f"/api/v1/services/{service['id']}/stages/int", json=policy, auth=AUTH)
    assert changed.status_code == 200, changed.text
    assert changed.json()["stages"][0]["lease_policy"]["default"] == "P2D"
    configuration = runtime.app.create_configuration(
        UUID(service["id"]), "p3", "", [{"name": "front"}], THREE_TIER, actor="admin"
    ).value
    return service["id"], str(configuration.id)


def test_a_receiver_gets_each_lease_warning_once_signed(tmp_path: Path, clock: FixedClock, receiver: Receiver) -> None:
    runtime, client = world(tmp_path, clock)
    try:
        service_id, configuration_id = payroll(client, runtime)
        made = client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "kinds": ["lease-expiring", "deployment-failed"], "service_id": service_id},
            auth=AUTH,
        )
        assert made.status_code == 201, made.text
        secret, webhook_id = made.json()["secret"], made.json()["id"]
        runtime.catch_up()
        listed = client.get("/api/v1/webhooks", params={"min_position": made.json()["position"]}, auth=AUTH)
        assert [w["id"] for w in listed.json()["items"]] == [webhook_id]
        assert secret not in listed.text
        deployed = client.post(
            f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"}, auth=AUTH
        ).json()
        runtime.catch_up()
        scheduler, delivery = runtime.lease_workers.scheduler, runtime.lease_workers.delivery
        scheduler.tick()
        clock.advance(days=1, hours=1)
        runtime.catch_up()
        scheduler.tick()
        runtime.catch_up()
        for _ in range(3):  # replays and repeated passes deliver nothing twice
            delivery.catch_up()
        assert len(receiver.calls) == 1
        headers, body = receiver.calls[0]
        assert verify(secret, body, headers["X-Stagekeeper-Signature"])
        payload = json.loads(body)
        assert (payload["kind"], payload["type"]) == ("lease-expiring", "Deployment.LeaseExpiring")
        assert payload["deployment_id"] == deployed["id"]
        assert headers["X-Stagekeeper-Event"] == payload["event_id"]
        log = client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", auth=AUTH).json()["items"]
        assert [(d["state"], d["attempts"], d["last_status"]) for d in log] == [("delivered", 1, 200)]
        # The lease shows on the deployment, and the report lists it.
        shown = client.get(f"/api/v1/deployments/{deployed['id']}", auth=AUTH).json()["lease"]
        assert shown["warned_for"] == shown["expires_at"]
        report = client.get("/api/v1/leases/report", params={"days": 2}, auth=AUTH).json()
        assert [(i["deployment_id"], i["kind"], i["action"]) for i in report["items"]] == [
            (deployed["id"], "lease", "undeploy")
        ]
        assert client.get("/api/v1/leases/report", params={"dry_run": "false"}, auth=AUTH).status_code == 422
        # Extend within the maximum, or be told which field broke the rule.
        extended = client.patch(f"/api/v1/deployments/{deployed['id']}/lease", json={"extend_by": "P3D"}, auth=AUTH)
        assert extended.status_code == 200, extended.text
        too_far = client.patch(f"/api/v1/deployments/{deployed['id']}/lease", json={"extend_by": "P30D"}, auth=AUTH)
        assert (too_far.status_code, too_far.json()["error"]["field"]) == (422, "extend_by")
        bad = client.patch(f"/api/v1/deployments/{deployed['id']}/lease", json={"extend_by": "3 days"}, auth=AUTH)
        assert bad.status_code == 422
        removed = client.delete(f"/api/v1/webhooks/{webhook_id}", auth=AUTH)
        assert removed.status_code == 200
        assert client.delete(f"/api/v1/webhooks/{webhook_id}", auth=AUTH).status_code == 409
    finally:
        runtime.close()


def test_webhook_urls_are_checked(tmp_path: Path, clock: FixedClock) -> None:
    runtime, client = world(tmp_path, clock)
    try:
        for url in ("ftp://example.com/x", "http://", "http://user:pw@example.com/", "x" * 3000):
            answer = client.post("/api/v1/webhooks", json={"url": url, "kinds": ["drift"]}, auth=AUTH)
            assert answer.status_code == 422, url
            assert answer.json()["error"]["field"] == "url"
        unknown = client.post("/api/v1/webhooks", json={"url": "http://x.test/", "kinds": ["nope"]}, auth=AUTH)
        assert unknown.status_code == 422
    finally:
        runtime.close()


def test_a_dead_receiver_is_retried_with_backoff_and_never_slows_commands(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    runtime, client = world(
        tmp_path, clock, webhook_url=dead, webhook_secret="s" * 32, webhook_max_attempts=3, lease_tick_seconds=0.05
    )
    # Where each delivery is attempted: only ever on the webhook thread, never on a command's (that is what
    # keeps a dead receiver from slowing commands; a bound on the commands' time measured the machine's load).
    threads: list[str] = []
    post = WebhookDelivery._post

    def attempted(self: WebhookDelivery, *args: Any) -> tuple[int | None, str | None]:
        threads.append(threading.current_thread().name)
        return post(self, *args)

    monkeypatch.setattr(WebhookDelivery, "_post", attempted)
    try:
        _service_id, configuration_id = payroll(client, runtime)
        runtime.start_workers()  # the webhook thread runs beside the commands
        for _ in range(5):
            answer = client.post(
                f"/api/v1/configurations/{configuration_id}/deployments",
                json={"stage": "int", "lease": "PT1H"},  # within the default warning: LeaseExpiring at once
                auth=AUTH,
            )
            assert answer.status_code == 202
        deadline = time.monotonic() + 20
        log: list[dict[str, Any]] = []
        from adapters.webhooks import SETTINGS_WEBHOOK_ID

        while time.monotonic() < deadline:
            log = client.get(f"/api/v1/webhooks/{SETTINGS_WEBHOOK_ID}/deliveries", auth=AUTH).json()["items"]
            if len(log) == 5 and all(d["attempts"] >= 1 for d in log):
                break
            time.sleep(0.1)
        assert len(log) == 5
        assert threads
        assert set(threads) == {"sk-webhooks"}
        assert {d["state"] for d in log} == {"pending"}
        assert all(d["last_status"] is None and d["last_error"] for d in log)
        # Moving the clock past each backoff tries again; after max_attempts a delivery is failed.
        for _ in range(3):
            clock.advance(hours=2)
            runtime.lease_workers.delivery.send()
        log = client.get(f"/api/v1/webhooks/{SETTINGS_WEBHOOK_ID}/deliveries", auth=AUTH).json()["items"]
        assert {(d["state"], d["attempts"]) for d in log} == {("failed", 3)}
    finally:
        runtime.close()
