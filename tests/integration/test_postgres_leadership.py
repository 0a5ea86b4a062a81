"""The process manager's leader loses its lock connection: it stops acting, a standby takes over,
and only one process issues vCenter calls from then on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import psycopg

from tests.integration.test_postgres_workers import event_counts, lock_holders, wait_for
from tests.support import POSTGRES_CONNINFO, THREE_TIER, postgres_schema, runtime_for, stages

# A `stagekeeper worker` (the real Runtime and its threads) whose simulated vCenter appends every
# call it receives to a log of its own: "<monotonic start> <pid> <method>" per line.
WORKER = """
import os, signal, sys, threading, time
from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter

class Recording(SimulatedVCenter):
    def __getattribute__(self, name):
        attribute = super().__getattribute__(name)
        if name.startswith("_") or not callable(attribute) or name == "close":
            return attribute
        def recorded(*args, **kwargs):
            with open(sys.argv[1], "a") as log:
                log.write(f"{time.time()} {os.getpid()} {name}\\n")
            return attribute(*args, **kwargs)
        return recorded

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
settings = Settings.from_env(os.environ)
runtime = Runtime(settings, vcenter=Recording(task_seconds=settings.simulator_task_seconds))
runtime.start_workers(projections=False)
while not stop.wait(0.1):
    pass
runtime.close()
"""


def calls(logs: list[Path]) -> list[tuple[float, int, str]]:
    found = []
    for log in logs:
        if log.exists():
            for line in log.read_text().splitlines():
                at, pid, method = line.split()
                found.append((float(at), int(pid), method))
    return sorted(found)


def lock_backend_pid(url: str) -> int:
    holders = lock_holders(url)
    assert len(holders) == 1, holders
    return holders[0][0]


def test_a_leader_whose_lock_connection_dies_stops_and_one_standby_finishes_the_job(tmp_path: Path) -> None:
    with postgres_schema() as url:
        commands = runtime_for(url)
        commands.app.import_templates(None, True, actor="a")
        service_id = commands.app.register_service("s", "", stages("int"), actor="a").value.id
        configuration_id = commands.app.create_configuration(
            service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="a"
        ).value.id
        env = {
            **os.environ,
            "STAGEKEEPER_DATABASE_URL": url,
            "STAGEKEEPER_POLL_SECONDS": "0.05",
            # One clone at a time, each taking a while: the lock is lost in the middle of the job.
            "STAGEKEEPER_VCENTER_PARALLEL_TASKS": "1",
            "STAGEKEEPER_SIMULATOR_TASK_SECONDS": "0.4",
        }
        logs = [tmp_path / f"calls{i}.log" for i in range(2)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(log)],
                env=env,
                stdout=(tmp_path / f"worker{i}.out").open("wb"),
                stderr=subprocess.STDOUT,
            )
            for i, log in enumerate(logs)
        ]
        try:
            deadline = time.monotonic() + 30
            while len(lock_holders(url)) != 1:
                assert time.monotonic() < deadline, "no worker took the lock"
                time.sleep(0.05)
            old_lock_pid = lock_backend_pid(url)

            # A standby keeps one connection while it polls (every 0.05 s), it does not open one per poll.
            # The process manager's lock only (the webhook delivery has a lock of its own), of this
            # test's two workers only (other tests share the server).
            names = [f"stagekeeper:process:deployments:pid={worker.pid}" for worker in workers]

            def standby_connections() -> set[int]:
                with psycopg.connect(POSTGRES_CONNINFO) as conn:
                    rows = conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = ANY(%s) AND pid <> %s",
                        (names, old_lock_pid),
                    ).fetchall()
                return {int(r[0]) for r in rows}

            seen = standby_connections()
            while not seen:  # the standby's first attempt may come late on a loaded machine
                assert time.monotonic() < deadline, "the standby never tried the lock"
                time.sleep(0.05)
                seen = standby_connections()
            for _ in range(6):
                seen |= standby_connections()
                time.sleep(0.1)
            assert len(seen) == 1, seen

            deployment_id: UUID = commands.app.deploy(configuration_id, "int", actor="a").value.id
            while event_counts(commands, deployment_id)["MachineProvisioned"] < 1:
                assert time.monotonic() < deadline + 30, "the leader never provisioned a machine"
                time.sleep(0.05)
            with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (old_lock_pid,))
            wait_for(commands, deployment_id, "deployed", timeout=60)
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(10)

        counts = event_counts(commands, deployment_id)
        assert (counts["Deployed"], counts["MachineProvisioned"]) == (1, 4)
        made = calls(logs)
        pids = [pid for _, pid, _ in made]
        old_leader, new_leader = pids[0], next(p for p in pids if p != pids[0])
        took_over = next(at for at, pid, _ in made if pid == new_leader)
        after = Counter(pid for at, pid, _ in made if at >= took_over)
        # From the moment the standby acted, the former leader issued no vCenter call at all.
        assert set(after) == {new_leader}, (after, old_leader)
        commands.close()
