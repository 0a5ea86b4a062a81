"""A database outage under load: a throwaway PostgreSQL cluster restarted with `-m immediate`
while clients post commands and read. Every answer is a 2xx or a JSON 503 with Retry-After
within the bound, no acknowledged command is lost, and the server serves again by itself."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.pg_cluster import Cluster, cluster
from tests.e2e.conftest import AUTH, Server, start_server, stop_server
from tests.support import stages

BOUND = 2.0  # STAGEKEEPER_UNAVAILABLE_SECONDS for this test
# An interrupted commit's outcome check may start just before the bound and wait one pooled-
# connection wait (half the bound); and scheduling on a shared 2-core machine.
SLACK = BOUND / 2 + 1.5
DOWN = 4.0  # seconds the server stays down (longer than BOUND + SLACK: nobody may wait it out)
WRITERS = 4
READS = ("/api/v1/services", "/api/v1/me", "/api/v1/audit", "/healthz")


@dataclass
class Answer:
    method: str
    path: str
    started: float
    seconds: float
    status: int
    code: str | None
    retry_after: str | None
    created: str | None


@pytest.fixture
def pg() -> Iterator[Cluster]:
    with cluster() as found:
        yield found


def call(client: httpx.Client, method: str, path: str, body: dict[str, object] | None = None) -> Answer:
    started = time.monotonic()
    response = client.request(method, path, json=body)
    seconds = time.monotonic() - started
    code = None
    if response.status_code >= 400:
        code = response.json()["error"]["code"]  # every error is JSON (raises otherwise)
    created = response.json()["id"] if response.status_code == 201 else None
    return Answer(
        method, path, started, seconds, response.status_code, code, response.headers.get("Retry-After"), created
    )


def load(server: Server, worker: int, stop: threading.Event, answers: list[Answer]) -> None:
    with httpx.Client(base_url=server.url, auth=AUTH, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            body: dict[str, object] = {"name": f"svc-{worker}-{n}", "stages": stages("int", pools=f"w{worker}-{n}-")}
            answers.append(call(client, "POST", "/api/v1/services", body))
            answers.append(call(client, "GET", READS[n % len(READS)]))


def test_an_immediate_restart_under_load_loses_no_acknowledged_command(pg: Cluster, tmp_path: Path) -> None:
    server = start_server(pg.url, tmp_path / "server.log", STAGEKEEPER_UNAVAILABLE_SECONDS=str(BOUND))
    try:
        answers: list[Answer] = []
        stop = threading.Event()
        workers = [threading.Thread(target=load, args=(server, w, stop, answers)) for w in range(WRITERS)]
        for worker in workers:
            worker.start()
        time.sleep(1.5)
        outage_start = time.monotonic()
        pg.restart_immediate(down_seconds=DOWN)
        outage_end = time.monotonic()
        # Keep the load on until the server has served commands again for a while.
        deadline = outage_end + 20
        while time.monotonic() < deadline:
            recent = [a for a in answers if a.started > outage_end + 1 and a.status == 201]
            if len(recent) >= 5:
                break
            time.sleep(0.2)
        stop.set()
        for worker in workers:
            worker.join(60)

        with httpx.Client(base_url=server.url, auth=AUTH, timeout=30) as client:
            acknowledged = [a.created for a in answers if a.created]
            missing = [i for i in acknowledged if client.get(f"/api/v1/services/{i}").status_code != 200]
        during = [a for a in answers if a.started + a.seconds >= outage_start and a.started <= outage_end]
        by_status = Counter(a.status for a in answers)
        print(
            f"\noutage {outage_end - outage_start:.1f} s; requests tried {len(answers)} "
            f"({len(during)} during the outage); answers by status {dict(sorted(by_status.items()))}; "
            f"acknowledged {len(acknowledged)}, acknowledged but missing {len(missing)}; "
            f"slowest answer {max(a.seconds for a in answers):.2f} s"
        )
        assert missing == []
        assert set(by_status) <= {200, 201, 503}, by_status
        slow = [(a.method, a.path, a.status, round(a.seconds, 2)) for a in answers if a.seconds > BOUND + SLACK]
        assert slow == []
        refused = [a for a in answers if a.status == 503]
        assert refused, "the outage was seen by clients"
        assert {(a.code, a.retry_after) for a in refused} == {("unavailable", str(round(BOUND)))}
        after = [a for a in answers if a.started > outage_end + 1 and a.status == 201]
        assert len(after) >= 5, "the server serves commands again after the outage"
    finally:
        stop_server(server)
