"""`stagekeeper serve --processes 2`: two API processes on one port, sharing the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import AUTH, free_port
from tests.support import postgres_schema, stages


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with postgres_schema() as database_url:
        port = free_port()
        environ = {
            **os.environ,
            "STAGEKEEPER_DATABASE_URL": database_url,
            "STAGEKEEPER_ADMIN_PASSWORD": AUTH[1],
            "STAGEKEEPER_POLL_SECONDS": "0.05",
        }
        command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--processes", "2"]
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=environ, stdout=out, stderr=out)
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 120
                while True:
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    try:
                        if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                yield url, process
            finally:
                process.terminate()
                process.wait(60)


def pinned_clients(url: str) -> dict[bool, httpx.Client]:
    """A keep-alive client on each process: the one running the workers leads the process manager."""
    found: dict[bool, httpx.Client] = {}
    for _ in range(200):
        client = httpx.Client(base_url=url, auth=AUTH, timeout=30)
        leader = bool(client.get("/healthz").json()["process_manager"]["leader"])
        if leader in found:
            client.close()
        else:
            found[leader] = client
        if len(found) == 2:
            return found
    raise AssertionError(f"every connection went to one process (leader: {list(found)})")


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_commands_succeed_on_both_processes_and_each_reads_the_others_writes(
    two_processes: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = two_processes
    assert len(children(process.pid)) == 2
    clients = pinned_clients(url)
    try:
        created = clients[True].post("/api/v1/services", json={"name": "payroll", "stages": stages("a")})
        assert created.status_code == 201, created.text
        service = f"/api/v1/services/{created.json()['id']}"
        for writer, reader in ((False, True), (True, False), (False, True)):
            description = f"written by the {'worker' if writer else 'API-only'} process"
            patched = clients[writer].patch(service, json={"description": description})
            assert patched.status_code == 200, patched.text
            position = patched.headers["X-Stagekeeper-Position"]
            # The other process reads the write: the aggregate at once, the list once projected.
            assert clients[reader].get(service).json()["description"] == description
            listed = clients[reader].get("/api/v1/services", params={"min_position": position})
            assert listed.status_code == 200, listed.text
            assert int(listed.json()["position"]) >= int(position)
            assert [s["description"] for s in listed.json()["items"]] == [description]
    finally:
        for client in clients.values():
            client.close()


def test_stopping_the_server_stops_every_api_process(two_processes: tuple[str, subprocess.Popen[bytes]]) -> None:
    _, process = two_processes
    pids = children(process.pid)
    assert len(pids) == 2
    process.terminate()
    assert process.wait(60) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
