"""Nothing acknowledged before it is durable: every command answered 2xx is in the event store after
the server is killed with SIGKILL mid-load (no shutdown, no flush), on PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from uuid import UUID

import httpx

from tests.e2e.conftest import AUTH, start_server, stop_server
from tests.support import runtime_for, stages


def test_every_acknowledged_command_survives_a_kill_9(postgres_url: str, tmp_path: Path) -> None:
    server = start_server(postgres_url, tmp_path / "server.log")
    acknowledged: dict[str, str] = {}  # service id -> last description answered 200
    created: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=server.url, auth=AUTH, timeout=30) as client:
            body = {"name": f"kill-{worker}", "stages": stages("int", pools=f"kill{worker}-")}
            answer = client.post("/api/v1/services", json=body)
            assert answer.status_code == 201, answer.text
            service_id = answer.json()["id"]
            created.append(service_id)
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answer = client.patch(f"/api/v1/services/{service_id}", json={"description": f"rev {n}"})
                except httpx.HTTPError:
                    return  # the server died with this request in flight: not acknowledged
                if answer.status_code == 200:
                    acknowledged[service_id] = f"rev {n}"

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    try:
        for worker in workers:
            worker.start()
        # Kill while every worker is sending commands (a loaded machine may be slow to get there).
        deadline = time.monotonic() + 30
        while (len(created) < 4 or len(acknowledged) < 4) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        server.process.kill()  # SIGKILL while commands are in flight
        server.process.wait(10)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
        if server.process.poll() is None:
            stop_server(server)
    assert len(created) == 4
    assert acknowledged, "no command was acknowledged before the kill"
    runtime = runtime_for(postgres_url)
    try:
        for service_id, description in acknowledged.items():
            stored = runtime.app.service(UUID(service_id)).description
            # The last acknowledged change is stored; a later one may have landed unacknowledged.
            assert int(stored.split()[1]) >= int(description.split()[1]), (service_id, stored, description)
    finally:
        runtime.close()
