"""GET /api/v1/services latency with 0 and with N open progress streams, against one real
`stagekeeper serve` (PostgreSQL schema, workers off so the deployment stays in progress).

Goal (issue 8, item 6): with 200 open streams, the median within 2x of the median with none.
Usage: .venv/bin/python -m scripts.bench.streams [--streams 200] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from scripts.bench.common import PASSWORD, schema, served, summary

AUTH = ("admin", PASSWORD)


def latencies(url: str, count: int) -> list[float]:
    values = []
    with httpx.Client(base_url=url, auth=AUTH, timeout=60) as client:
        client.get("/api/v1/services")  # connection and credential cache warm
        for _ in range(count):
            started = time.perf_counter()
            client.get("/api/v1/services").raise_for_status()
            values.append(time.perf_counter() - started)
    return values


def setup(url: str) -> str:
    with httpx.Client(base_url=url, auth=AUTH, timeout=60) as client:
        client.post("/api/v1/templates/import", json={"all": True}).raise_for_status()
        pool = "/DC0/host/DC0_C0/Resources/bench-int"
        body = {"name": "bench", "stages": [{"name": "int", "resource_pool": pool}]}
        service = client.post("/api/v1/services", json=body)
        service.raise_for_status()
        machine = {"name": "web1", "template": "tpl-ubuntu-2404", "nics": [{"network": "front"}]}
        configuration = client.post(
            f"/api/v1/services/{service.json()['id']}/configurations",
            json={"name": "c", "networks": [{"name": "front"}], "machines": [machine]},
        )
        configuration.raise_for_status()
        deployments = f"/api/v1/configurations/{configuration.json()['id']}/deployments"
        deployment = client.post(deployments, json={"stage": "int"})
        deployment.raise_for_status()
        return str(deployment.json()["id"])


class Streams:
    """N open streams held by an event loop in a thread of their own, until closed."""

    def __init__(self, url: str, path: str, count: int) -> None:
        self.url, self.path, self.count = url, path, count
        self.opened = threading.Event()
        self.statuses: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _one(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        async with client.stream("GET", self.path) as response:
            self.statuses.append(response.status_code)
            if len(self.statuses) == self.count:
                self.opened.set()
            await stop.wait()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(base_url=self.url, auth=AUTH, timeout=120, limits=limits) as client:
            await asyncio.gather(*(self._one(client, self._stop) for _ in range(self.count)))

    def __enter__(self) -> Streams:
        self._thread.start()
        if not self.opened.wait(120):
            raise RuntimeError(f"only {len(self.statuses)} of {self.count} streams opened")
        return self

    def __exit__(self, *_: object) -> None:
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    env = {"STAGEKEEPER_SERVE_WORKERS": "false", "STAGEKEEPER_MAX_STREAMS_PER_CALLER": str(args.streams)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        schema() as (_, database_url),
        served(database_url, Path(tmp) / "server.log", **env) as url,
    ):
        deployment_id = setup(url)
        base = latencies(url, args.requests)
        with Streams(url, f"/api/v1/deployments/{deployment_id}/events", args.streams) as streams:
            assert set(streams.statuses) == {200}, streams.statuses
            loaded = latencies(url, args.requests)
    ratio = statistics.median(loaded) / statistics.median(base)
    print(f"GET /services, 0 streams:   {summary(base)}")
    print(f"GET /services, {args.streams} streams: {summary(loaded)}")
    print(f"median ratio {ratio:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
