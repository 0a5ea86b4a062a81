"""Several `stagekeeper worker` processes against one PostgreSQL: one leader, no step twice,
a killed leader is replaced, and concurrently followed projections stay exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from adapters.pglock import advisory_key
from adapters.runtime import PROCESS_NAME, Runtime
from adapters.settings import database as parse_database_url
from adapters.vcenter.simulated import SimulatedVCenter
from tests.support import POSTGRES_CONNINFO, THREE_TIER, postgres_schema, runtime_for, stages


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with postgres_schema() as url:
        yield url, tmp_path / "vcenter.json"


def start_worker(url: str, inventory: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STAGEKEEPER_DATABASE_URL": url,
        "STAGEKEEPER_SIMULATOR_STATE": str(inventory),
        "STAGEKEEPER_POLL_SECONDS": "0.05",
    }
    out = log.open("wb")
    return subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env, stdout=out, stderr=out)


def wait_for(runtime: Runtime, deployment_id: UUID, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.app.deployment(deployment_id).state == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"{deployment_id} is {runtime.app.deployment(deployment_id).state}, not {state}")


def lock_holders(url: str) -> list[tuple[int, str]]:
    """(backend pid, application_name) of the sessions holding this schema's process-manager lock:
    only this test's own lock, whatever else uses the same PostgreSQL server."""
    key = advisory_key(parse_database_url(url), PROCESS_NAME)
    with psycopg.connect(POSTGRES_CONNINFO) as conn:
        rows = conn.execute(
            "SELECT a.pid, a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (key,),
        ).fetchall()
    return [(int(pid), str(name)) for pid, name in rows]


def leader_pid(url: str) -> int:
    holders = lock_holders(url)
    assert len(holders) == 1, holders
    return int(holders[0][1].rsplit("=", 1)[1])


def event_counts(runtime: Runtime, deployment_id: UUID) -> Counter[str]:
    return Counter(
        n.topic.removeprefix("stagekeeper:Deployment.")
        for n in runtime.app.select_notifications(1, 10_000)
        if n.originator_id == deployment_id
    )


def test_workers_share_the_work_without_doing_any_step_twice(database: tuple[str, Path], tmp_path: Path) -> None:
    url, inventory = database
    # The command side: a runtime with no workers of its own (like an API process with workers off).
    commands = runtime_for(url, vcenter=SimulatedVCenter(state_file=inventory))
    commands.app.import_templates(None, True, actor="a")
    service_id = commands.app.register_service("s", "", stages("int", "test"), actor="a").value.id
    configuration_id = commands.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value.id
    workers = [start_worker(url, inventory, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        first = commands.app.deploy(configuration_id, "int", actor="a").value.id
        wait_for(commands, first, "deployed")
        counts = event_counts(commands, first)
        assert counts["ProvisioningStarted"] == 1
        assert counts["MachineProvisioned"] == 4
        assert counts["Deployed"] == 1

        # Kill the worker that leads the process manager; the other must take over.
        leader = next(w for w in workers if w.pid == leader_pid(url))
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        second = commands.app.deploy(configuration_id, "int", actor="a").value.id
        wait_for(commands, second, "deployed", timeout=60)
        assert event_counts(commands, second)["MachineProvisioned"] == 4
        assert len(SimulatedVCenter(state_file=inventory).find_vms(second)) == 4
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(10)

    # Projections were followed by two processes at once: they must equal a fresh replay.
    def rows() -> dict[str, list[dict[str, object]]]:
        return {
            t: commands.store.query(f"SELECT * FROM {t} ORDER BY 1, 2")  # noqa: S608
            for p in commands.projections
            for t in p.tables
        }

    commands.catch_up()
    followed = rows()
    for projection in commands.projections:
        commands.projection_follower.rebuild(projection.name)
    assert rows() == followed
    commands.close()
