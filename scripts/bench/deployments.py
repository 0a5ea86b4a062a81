"""Deployments read model catch-up on PostgreSQL, next to decoding the same events.

Builds deployments through their whole life with the simulated driver (deploy, provision,
promote, undeploy: about 25 events each for 4 machines), then replays the deployments read model
alone from position zero and prints its rate as a ratio of a baseline measured in the same run:
reading and decoding the same notifications (what any decoded read model must do at least).
Usage: .venv/bin/python -m scripts.bench.deployments [--deployments 200]
"""

from __future__ import annotations

import argparse
import time

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from projections.follower import ProjectionFollower
from scripts.bench.common import schema

POOL = "/DC0/host/DC0_C0/Resources"


def machine(name: str) -> dict[str, object]:
    return {
        "name": name,
        "template": "tpl-ubuntu-2404",
        "cpus": 2,
        "memory_mib": 2048,
        "nics": [{"network": "front"}],
        "customization": {"os": "linux"},
    }


def build(runtime: Runtime, count: int) -> None:
    app = runtime.app
    app.import_templates(None, True, actor="bench")
    stages = [{"name": s, "resource_pool": f"{POOL}/{s}"} for s in ("int", "test")]
    service_id = app.register_service("bench", "", stages, actor="bench").value.id
    machines = [machine(f"m{i}") for i in range(4)]
    configuration_id = app.create_configuration(
        service_id, "c", "", [{"name": "front"}], machines, actor="bench"
    ).value.id
    ids = [app.deploy(configuration_id, "int", actor="bench").value.id for _ in range(count)]
    runtime.catch_up()
    for deployment_id in ids:
        app.promote(deployment_id, actor="bench")
    runtime.catch_up()
    for deployment_id in ids[: count // 2]:
        app.undeploy(deployment_id, actor="bench")
    runtime.catch_up()


def decode_rate(runtime: Runtime) -> float:
    started, count, start = time.perf_counter(), 0, 1
    while batch := runtime.app.select_notifications(start, 2500):
        for notification in batch:
            if notification.topic.startswith("stagekeeper:Deployment."):
                runtime.app.decode(notification)
        count += len(batch)
        start = batch[-1].id + 1
    return count / (time.perf_counter() - started)


def replay_rate(runtime: Runtime) -> float:
    [projection] = [p for p in runtime.projections if p.name == "deployments"]
    with runtime.store.transaction() as cursor:
        for table in projection.tables:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        cursor.execute("UPDATE sk_tracking SET position = 0 WHERE name = 'deployments'")
    # Nothing kept in memory from the build: every deployment is met afresh, as after a restart.
    kept = getattr(projection, "_kept", None)
    if kept is not None:
        kept.clear()
    started = time.perf_counter()
    ProjectionFollower(runtime.app, runtime.store, [projection]).catch_up()
    return runtime.app.head() / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=200)
    args = parser.parse_args()
    with schema() as (_, url):
        runtime = Runtime(Settings(database_url=url, admin_password="bench"), vcenter=SimulatedVCenter())
        try:
            started = time.perf_counter()
            build(runtime, args.deployments)
            head = runtime.app.head()
            print(
                f"history: {head} events, {args.deployments} deployments, built in {time.perf_counter() - started:.1f}s"
            )
            baseline = max(decode_rate(runtime) for _ in range(2))
            rate = max(replay_rate(runtime) for _ in range(2))
            print(f"read + decode (baseline): {baseline:,.0f} events/s")
            print(f"deployments read model catch-up: {rate:,.0f} events/s = {rate / baseline:.2f}x baseline")
        finally:
            runtime.close()


if __name__ == "__main__":
    main()
