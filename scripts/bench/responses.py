"""What typed responses cost: the largest deployments page (5000 rows of 4 machines) answered
through the real response model (validated and serialised by FastAPI) against the same rows
returned untyped (`dict[str, Any]`, as before response models), in one app, in one run.

Usage: .venv/bin/python -m scripts.bench.responses [--rows 5000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.responses.deployments import DeploymentList


def rows(count: int) -> list[dict[str, Any]]:
    machine = {
        "name": "web1", "template": "tpl-ubuntu-2404", "cpus": 2, "memory_mib": 2048, "os": "linux",
        "clone_mode": "linked", "state": "provisioned", "vm_name": "sk-0f3c9a1b-web1", "ip": "10.20.0.17",
        "mac": "00:50:56:00:12:34", "resource_pool": "/DC0/host/DC0_C0/Resources/payroll-int",
    }  # fmt: skip
    return [
        {
            "id": str(uuid.uuid4()),
            "service_id": str(uuid.uuid4()),
            "configuration_id": str(uuid.uuid4()),
            "configuration_name": "payroll-3tier",
            "configuration_version": 3,
            "stage": "integration",
            "resource_pool": "/DC0/host/DC0_C0/Resources/payroll-int",
            "target_stage": None,
            "target_pool": None,
            "state": "deployed",
            "failure": None,
            "machines": [dict(machine, name=f"m{i}") for i in range(4)],
            "requested_by": "admin",
            "requested_at": "2026-11-26T09:30:00.000000+00:00",
            "updated_at": "2026-11-26T09:31:00.000000+00:00",
            "version": 7,
            "position": 100 + n,
        }
        for n in range(count)
    ]


def build(page: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/untyped")
    def untyped() -> dict[str, Any]:
        return page

    @app.get("/typed", response_model=DeploymentList)
    def typed() -> DeploymentList:
        return DeploymentList.model_validate(page)

    return app


def median_seconds(client: TestClient, path: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    page = {"items": rows(args.rows), "position": 1}
    with TestClient(build(page)) as client:
        assert client.get("/typed").json() == client.get("/untyped").json()  # same JSON, byte for byte in content
        baseline = median_seconds(client, "/untyped", args.repeat)
        typed = median_seconds(client, "/typed", args.repeat)
    label = f"{args.rows} deployments, median of {args.repeat}"
    print(f"{label}: untyped {baseline * 1000:.0f} ms, typed {typed * 1000:.0f} ms")
    print(f"ratio typed/untyped: {typed / baseline:.2f}")


if __name__ == "__main__":
    main()
