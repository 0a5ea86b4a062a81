"""HTTP fixtures: an in-process client, and a real `stagekeeper serve` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from tests.support import postgres_schema, runtime_for, settings_for

AUTH = ("admin", "secret-pw")


def settle(runtime: Runtime) -> None:
    """Until the runtime's background workers have nothing left to write: the process manager has
    reached the head and the head stays put. What a request or `catch_up` in the test's thread leaves
    to the process manager's thread (a deploy's last power-on, the machines a swap lets go of, the
    resource pools of a new service) is then written, so the test neither races it nor reads before it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        head = runtime.app.head()
        if runtime.process_follower.position() >= head:
            time.sleep(0.1)
            if runtime.app.head() == head:
                return
        time.sleep(0.02)
    raise AssertionError("the workers never settled")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_for(f"sqlite:///{tmp_path}/sk.db")
    runtime.ensure_admin()
    yield runtime
    runtime.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=AUTH, timeout=30)


def start_server(database_url: str, log: Path, **env: str) -> Server:
    return start_server_at(free_port(), database_url, log, **env)


def start_server_at(port: int, database_url: str, log: Path, **env: str) -> Server:
    """`stagekeeper serve` on a given port (a sign-on provider must know the console's address first)."""
    environ = {
        **os.environ,
        "STAGEKEEPER_DATABASE_URL": database_url,
        "STAGEKEEPER_ADMIN_PASSWORD": AUTH[1],
        "STAGEKEEPER_POLL_SECONDS": "0.05",
        **env,
    }
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)], env=environ, stdout=out, stderr=out
    )
    url = f"http://127.0.0.1:{port}"
    # Start-up imports take a second on a quiet machine; a loaded one (load 9 on 2 cores) took 30 s.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Server(url, process, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    server = start_server(f"sqlite:///{tmp_path}/sk.db", tmp_path / "server.log")
    yield server
    stop_server(server)


@pytest.fixture
def postgres_server(tmp_path: Path) -> Iterator[Server]:
    with postgres_schema() as url:
        server = start_server(url, tmp_path / "server.log")
        yield server
        stop_server(server)
