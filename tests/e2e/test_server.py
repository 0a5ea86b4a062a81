"""A real `stagekeeper serve` process over HTTP: first start, walkthrough, concurrency on PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Server, free_port, start_server, stop_server
from tests.support import THREE_TIER, stages


def wait_state(client: httpx.Client, deployment_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/deployments/{deployment_id}").json()
        if body["state"] == state:
            return body
        time.sleep(0.05)
    raise AssertionError(f"never reached {state}: {body}")


def deploy_one(client: httpx.Client, stage: str = "int") -> str:
    assert client.post("/api/v1/templates/import", json={"all": True}).status_code == 200
    service = client.post("/api/v1/services", json={"name": "payroll", "stages": stages("int", "test", "prod")})
    assert service.status_code == 201, service.text
    configuration = client.post(
        f"/api/v1/services/{service.json()['id']}/configurations",
        json={"name": "p3", "networks": [{"name": "front"}], "machines": THREE_TIER},
    )
    assert configuration.status_code == 201, configuration.text
    deployment = client.post(f"/api/v1/configurations/{configuration.json()['id']}/deployments", json={"stage": stage})
    assert deployment.status_code == 202
    deployment_id = str(deployment.json()["id"])
    wait_state(client, deployment_id, "deployed")
    return deployment_id


def test_first_start_generates_and_prints_the_admin_password_once(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "STAGEKEEPER_ADMIN_PASSWORD"}
    env["STAGEKEEPER_DATABASE_URL"] = f"sqlite:///{tmp_path}/sk.db"
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    log = tmp_path / "first.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        try:
            password = ""
            for _ in range(200):
                match = re.search(r"password: (\S+)", log.read_text())
                if match and "Uvicorn running" in log.read_text():
                    password = match.group(1)
                    break
                time.sleep(0.1)
            assert password, log.read_text()
            url = f"http://127.0.0.1:{port}/api/v1/services"
            assert httpx.get(url, auth=("admin", password)).status_code == 200
            assert httpx.get(url, auth=("admin", "guess")).status_code == 401
        finally:
            process.terminate()
            process.wait(10)
    assert password not in (tmp_path / "sk.db").read_bytes().decode("latin-1")
    second_log = tmp_path / "second.log"
    server = start_server(f"sqlite:///{tmp_path}/sk.db", second_log, STAGEKEEPER_ADMIN_PASSWORD="")
    try:
        assert "password:" not in second_log.read_text()
        assert httpx.get(server.url + "/api/v1/services", auth=("admin", password)).status_code == 200
    finally:
        stop_server(server)


def test_the_readme_walkthrough_over_http(sqlite_server: Server) -> None:
    with sqlite_server.client() as client:
        deployment_id = deploy_one(client)
        promote = client.post(f"/api/v1/deployments/{deployment_id}/promote", json={"reason": "QA passed"})
        assert promote.status_code == 202
        body = wait_state(client, deployment_id, "deployed")
        assert body["stage"] == "test"
        listed = client.get("/api/v1/deployments", params={"stage": "test", "min_position": body["position"]})
        assert [d["id"] for d in listed.json()["items"]] == [deployment_id]


def test_two_concurrent_promotes_over_http_on_postgres_one_wins_one_gets_409(postgres_server: Server) -> None:
    with postgres_server.client() as client:
        deployment_id = deploy_one(client)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def promote() -> None:
        with postgres_server.client() as own:
            barrier.wait()
            statuses.append(own.post(f"/api/v1/deployments/{deployment_id}/promote").status_code)

    threads = [threading.Thread(target=promote) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202, 409]
    with postgres_server.client() as client:
        assert wait_state(client, deployment_id, "deployed")["stage"] == "test"


def test_nothing_acknowledged_is_lost_across_a_server_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sk.db"
    server = start_server(url, tmp_path / "a.log")
    with server.client() as client:
        deployment_id = deploy_one(client)
    stop_server(server)
    again = start_server(url, tmp_path / "b.log")
    try:
        with again.client() as client:
            assert client.get(f"/api/v1/deployments/{deployment_id}").json()["state"] == "deployed"
            assert [s["name"] for s in client.get("/api/v1/services").json()["items"]] == ["payroll"]
    finally:
        stop_server(again)


def test_deployment_progress_streams_as_server_sent_events(sqlite_server: Server) -> None:
    with sqlite_server.client() as client:
        deployment_id = deploy_one(client)
        client.post(f"/api/v1/deployments/{deployment_id}/promote")
        events: list[dict[str, Any]] = []
        with client.stream("GET", f"/api/v1/deployments/{deployment_id}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append({"event": kind, **json.loads(line.removeprefix("data: "))})
        progress = [e for e in events if e["event"] == "progress"]
        assert [e["version"] for e in progress] == list(range(1, len(progress) + 1))
        types = [e["type"] for e in progress]
        assert types[0] == "Deployment.Requested"
        assert types.count("Deployment.MachineProvisioned") == 4
        assert "Deployment.Moved" in types
        assert events[-1] == {"event": "end", "state": "deployed", "version": len(progress)}
        resumed = client.get(
            f"/api/v1/deployments/{deployment_id}/events", headers={"Last-Event-ID": str(len(progress) - 1)}
        )
        assert resumed.text.count("event: progress") == 1
