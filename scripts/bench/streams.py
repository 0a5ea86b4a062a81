"""GET /api/v1/services latency with 0 and with N open progress streams, against one real
`stagekeeper serve` (PostgreSQL schema, workers off so the deployment stays in progress), with
the head idle and while a writer changes an UNRELATED service about 10 times a second (each
write moves the head: streams must not wake for it).

Goal (issue 8, item 6): with 200 open streams, the median within 2x of the median with none,
idle and under writes.
Usage: .venv/bin/python -m scripts.bench.streams [--streams 200] [--requests 200] [--writes-per-second 10]
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


def setup(url: str) -> tuple[str, str]:
    """A deployment in progress, and another service; returns their ids."""
    with httpx.Client(base_url=url, auth=AUTH, timeout=60) as client:
        client.post("/api/v1/templates/import", json={"all": True}).raise_for_status()
        other = {"name": "other", "stages": [{"name": "int", "resource_pool": "/DC0/host/DC0_C0/Resources/other-int"}]}
        unrelated = client.post("/api/v1/services", json=other)
        unrelated.raise_for_status()
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
        return str(deployment.json()["id"]), str(unrelated.json()["id"])


class Writer:
    """Changes one service's description `per_second` times a second in a thread, until closed."""

    def __init__(self, url: str, service_id: str, per_second: float) -> None:
        self.url, self.path, self.interval = url, f"/api/v1/services/{service_id}", 1 / per_second
        self.writes = 0
        self.rate = 0.0
        self._started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, auth=AUTH, timeout=60) as client:
            due = time.monotonic()
            while not self._stop.is_set():
                client.patch(self.path, json={"description": f"change {self.writes}"}).raise_for_status()
                self.writes += 1
                due += self.interval
                self._stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> Writer:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.rate = self.writes / (time.monotonic() - self._started)


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
    parser.add_argument("--writes-per-second", type=float, default=10.0)
    args = parser.parse_args()
    env = {"STAGEKEEPER_SERVE_WORKERS": "false", "STAGEKEEPER_MAX_STREAMS_PER_CALLER": str(args.streams)}
    results: dict[str, list[float]] = {}
    rates: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        schema() as (_, database_url),
        served(database_url, Path(tmp) / "server.log", **env) as url,
    ):
        deployment_id, unrelated = setup(url)
        results["idle, 0 streams"] = latencies(url, args.requests)
        with Writer(url, unrelated, args.writes_per_second) as writer:
            results["writes, 0 streams"] = latencies(url, args.requests)
        rates.append(writer.rate)
        with Streams(url, f"/api/v1/deployments/{deployment_id}/events", args.streams) as streams:
            assert set(streams.statuses) == {200}, streams.statuses
            results[f"idle, {args.streams} streams"] = latencies(url, args.requests)
            with Writer(url, unrelated, args.writes_per_second) as writer:
                results[f"writes, {args.streams} streams"] = latencies(url, args.requests)
            rates.append(writer.rate)
        # The same writes made by another process: this one sees only the head move (polling).
        with served(database_url, Path(tmp) / "other.log", **env) as other:
            with Writer(other, unrelated, args.writes_per_second) as writer:
                results["other process writes, 0 streams"] = latencies(url, args.requests)
            rates.append(writer.rate)
            with Streams(url, f"/api/v1/deployments/{deployment_id}/events", args.streams) as streams:
                with Writer(other, unrelated, args.writes_per_second) as writer:
                    results[f"other process writes, {args.streams} streams"] = latencies(url, args.requests)
                rates.append(writer.rate)
    print(f"writer on an unrelated service: {', '.join(f'{r:.1f}' for r in rates)} writes/s")
    for name, values in results.items():
        print(f"GET /services, {name + ':':<36} {summary(values)}")
    for head in ("idle", "writes", "other process writes"):
        ratio = statistics.median(results[f"{head}, {args.streams} streams"]) / statistics.median(
            results[f"{head}, 0 streams"]
        )
        print(f"median ratio {head}: {ratio:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
