"""Request ids (header, logs, event metadata), /metrics and its separate bind, JSON logs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from uuid import UUID

import httpx
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from tests.e2e.conftest import AUTH, free_port, start_server, stop_server
from tests.support import THREE_TIER, stages


def test_the_request_id_is_returned_and_kept_in_the_events_it_writes(client: TestClient, runtime: Runtime) -> None:
    made = client.post(
        "/api/v1/services", json={"name": "payroll", "stages": stages("int")}, auth=AUTH,
        headers={"X-Request-ID": "trace-123"},
    )  # fmt: skip
    assert made.status_code == 201
    assert made.headers["x-request-id"] == "trace-123"
    written = list(runtime.app.events.get(UUID(made.json()["id"])))
    assert written
    ids = {type(e).__qualname__: getattr(e, "request_id", None) for e in written}
    assert ids["Service.Registered"] == "trace-123"
    # Replayed, the service is the same: the metadata is not a field of the event's class.
    assert runtime.app.service(UUID(made.json()["id"])).name == "payroll"
    # A header that could smuggle anything into logs is replaced by a fresh id.
    other = client.get("/api/v1/services", auth=AUTH, headers={"X-Request-ID": "two words <script>"})
    assert other.headers["x-request-id"] != "two words <script>"
    assert len(other.headers["x-request-id"]) == 32
    # Errors carry one too (answered by the error handlers).
    assert client.get("/api/v1/services").headers["x-request-id"]


def test_metrics_count_commands_vcenter_calls_and_lag(client: TestClient, runtime: Runtime) -> None:
    assert client.get("/metrics").status_code == 401
    http = client
    http.post("/api/v1/templates/import", json={"all": True}, auth=AUTH)
    service = http.post("/api/v1/services", json={"name": "payroll", "stages": stages("int")}, auth=AUTH).json()
    body = {"name": "three-tier", "networks": [{"name": "front"}], "machines": THREE_TIER}
    configuration = http.post(f"/api/v1/services/{service['id']}/configurations", json=body, auth=AUTH).json()
    deployed = http.post(f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH)
    assert deployed.status_code == 202
    refused = http.post(f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "x"}, auth=AUTH)
    assert refused.status_code in (404, 409, 422)
    # The app's own workers build it (the lifespan started them).
    deadline = time.monotonic() + 30
    while runtime.app.deployment(UUID(deployed.json()["id"])).state != "deployed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    position = runtime.app.head()
    while min(runtime.projection_follower.positions().values()) < position:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    answer = client.get("/metrics", auth=AUTH)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    route = "POST /api/v1/configurations/{configuration_id}/deployments"
    assert f'stagekeeper_commands_total{{command="{route}",outcome="accepted"}} 1.0' in text
    assert f'stagekeeper_command_seconds_count{{command="{route}"}} 2.0' in text
    assert f'stagekeeper_vcenter_calls_total{{method="clone"}} {float(len(THREE_TIER))}' in text
    assert 'stagekeeper_events_written_total{type="Deployment.Deployed"} 1.0' in text
    assert 'stagekeeper_process_step_seconds_count{event="Deployment.Requested"} 1.0' in text
    assert 'stagekeeper_read_model_lag_events{projection="deployments"} 0.0' in text
    assert "stagekeeper_process_manager_queue_events 0.0" in text
    assert "stagekeeper_progress_streams_open 0.0" in text


def test_a_server_logs_json_lines_and_serves_metrics_on_its_own_bind(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(
        f"sqlite:///{tmp_path}/sk.db", tmp_path / "server.log",
        STAGEKEEPER_LOG_FORMAT="json", STAGEKEEPER_METRICS_ADDRESS=f"127.0.0.1:{port}",
    )  # fmt: skip
    try:
        answer = httpx.get(server.url + "/api/v1/me", auth=AUTH, headers={"X-Request-ID": "from-the-proxy"})
        assert answer.status_code == 200
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")  # no credentials on the scrape bind
        assert scraped.status_code == 200
        assert 'stagekeeper_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1.0' in scraped.text
    finally:
        stop_server(server)
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "from-the-proxy"]
    assert access
    assert access[0]["actor"] == "admin"
    assert access[0]["route"] == "/api/v1/me"
    assert access[0]["status"] == 200
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
