"""Live progress streams cost no thread: many open streams leave the other routes answering."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import anyio.to_thread
import httpx
import pytest

from adapters.runtime import Runtime
from api.app import create_app
from api.notify import Notifier
from api.routes import progress
from tests.e2e.conftest import AUTH
from tests.e2e.live import serve
from tests.support import machine, settings_for, stages

STREAMS = 100
WATCHERS = 50
UNRELATED_CHANGES = 20


def active_deployment(runtime: Runtime) -> UUID:
    """A deployment requested but not built yet (no workers run): it stays active."""
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    service_id = app.register_service("payroll", "", stages("int"), actor="setup").value.id
    configuration_id = app.create_configuration(
        service_id, "p", "", [{"name": "front"}], [machine("web1")], "setup"
    ).value.id
    return app.deploy(configuration_id, "int", actor="setup").value.id


async def open_stream(client: httpx.AsyncClient, path: str, opened: asyncio.Queue[int]) -> list[str]:
    events: list[str] = []
    async with client.stream("GET", path) as response:
        await opened.put(response.status_code)
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
    return events


async def scenario(url: str, deployment_id: UUID, runtime: Runtime) -> None:
    path = f"/api/v1/deployments/{deployment_id}/events"
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=60, limits=limits) as client:
        opened: asyncio.Queue[int] = asyncio.Queue()
        streams = [asyncio.create_task(open_stream(client, path, opened)) for _ in range(STREAMS)]
        statuses = [await asyncio.wait_for(opened.get(), 30) for _ in range(STREAMS)]
        assert statuses == [200] * STREAMS
        # Beyond the caller's limit: a JSON 429, not one more waiting stream.
        refused = await client.get(path)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_requests"
        timings = []
        for _ in range(10):
            started = time.monotonic()
            answer = await client.get("/api/v1/services")
            timings.append(time.monotonic() - started)
            assert answer.status_code == 200
        print(f"\nGET /services with {STREAMS} open streams: median {statistics.median(timings) * 1000:.1f} ms")
        assert statistics.median(timings) < 1.0
        # The deployment is built now: every stream gets its progress and its end, then closes.
        builder = threading.Thread(target=runtime.catch_up)
        builder.start()
        results = await asyncio.wait_for(asyncio.gather(*streams), 60)
        builder.join()
        for events in results:
            assert events[0] == "progress"
            assert events[-1] == "end"
        # Closed streams gave their slots back.
        assert (await client.get(path)).status_code == 200


def test_many_open_streams_leave_other_routes_answering(runtime: Runtime) -> None:
    deployment_id = active_deployment(runtime)
    settings = settings_for(runtime.settings.database_url, max_streams_per_caller=STREAMS)
    app = create_app(settings, runtime=runtime, start_workers=False)
    with serve(app) as url:
        asyncio.run(scenario(url, deployment_id, runtime))


class DeploymentReads:
    """Counts the event-store reads of one aggregate's events or snapshots, whoever makes them."""

    def __init__(self, runtime: Runtime, aggregate_id: UUID, monkeypatch: pytest.MonkeyPatch) -> None:
        self.aggregate_id = aggregate_id
        self.count = 0
        recorders = [runtime.app.events.recorder]
        if runtime.app.snapshots is not None:
            recorders.append(runtime.app.snapshots.recorder)
        for recorder in recorders:
            monkeypatch.setattr(recorder, "select_events", self._counting(recorder.select_events))

    def _counting(self, select: Callable[..., Any]) -> Callable[..., Any]:
        def counted(originator_id: UUID, *args: Any, **kwargs: Any) -> Any:
            if originator_id == self.aggregate_id:
                self.count += 1
            return select(originator_id, *args, **kwargs)

        return counted


async def watch(client: httpx.AsyncClient, path: str, first: asyncio.Queue[None]) -> list[str]:
    """Follow one stream to its end; signals `first` once its first event arrived."""
    events: list[str] = []
    async with client.stream("GET", path) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                if not events:
                    await first.put(None)
                events.append(line.removeprefix("event: "))
    return events


def change_unrelated_service(runtime: Runtime, service_id: UUID) -> None:
    for n in range(UNRELATED_CHANGES):
        runtime.app.update_service(service_id, f"change {n}", actor="someone-else")


async def unrelated_writes_scenario(
    url: str, deployment_id: UUID, other_service: UUID, runtime: Runtime, reads: DeploymentReads
) -> None:
    path = f"/api/v1/deployments/{deployment_id}/events"
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=60, limits=limits) as client:
        first: asyncio.Queue[None] = asyncio.Queue()
        streams = [asyncio.create_task(watch(client, path, first)) for _ in range(WATCHERS)]
        try:
            for _ in range(WATCHERS):
                await asyncio.wait_for(first.get(), 30)
            reads.count = 0
            head = runtime.app.head()
            await asyncio.to_thread(change_unrelated_service, runtime, other_service)
            assert runtime.app.head() >= head + UNRELATED_CHANGES
            # Several polls of the head pass: the writes were this process's own, so no stream looks.
            await asyncio.sleep(10 * runtime.settings.poll_seconds)
            assert reads.count == 0, f"{WATCHERS} streams read their deployment {reads.count} times for other writes"
            # The watched deployment changes (it is built): every stream still gets it, and its end.
            await asyncio.to_thread(runtime.catch_up)
            results = await asyncio.wait_for(asyncio.gather(*streams), 60)
        finally:
            for task in streams:
                task.cancel()
        assert runtime.app.deployment(deployment_id).state == "deployed"
        for events in results:
            assert events.count("progress") > 1
            assert events[-1] == "end"


def test_streams_do_not_read_the_store_for_writes_to_other_aggregates(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_id = active_deployment(runtime)
    other_service = runtime.app.register_service("billing", "", stages("int", pools="b-"), actor="setup").value.id
    reads = DeploymentReads(runtime, deployment_id, monkeypatch)
    settings = settings_for(runtime.settings.database_url, max_streams_per_caller=WATCHERS)
    app = create_app(settings, runtime=runtime, start_workers=False)
    with serve(app) as url:
        asyncio.run(unrelated_writes_scenario(url, deployment_id, other_service, runtime, reads))


def test_stream_reads_do_not_wait_for_the_threads_of_the_sync_routes(runtime: Runtime) -> None:
    deployment_id = active_deployment(runtime)

    async def scenario() -> None:
        # Every thread the sync routes run in is busy.
        routes = anyio.to_thread.current_default_thread_limiter()
        routes.total_tokens = 1
        await routes.acquire()
        try:
            notifier = Notifier(runtime.app.head, poll_seconds=0.05)
            events = progress.stream(runtime, notifier, progress.read_limiter(), deployment_id, 0, 5.0, 15.0)
            first = await asyncio.wait_for(anext(events), 5)
            assert first.startswith(b"id: 1\nevent: progress\n")
            await events.aclose()
        finally:
            routes.release()

    asyncio.run(scenario())


async def follow(client: httpx.AsyncClient, path: str, first: asyncio.Queue[None]) -> list[dict[str, Any]]:
    """Every event of one stream (progress and end) as its data, with its kind under "event"."""
    events: list[dict[str, Any]] = []
    kind = ""
    async with client.stream("GET", path) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                if not events:
                    await first.put(None)
                events.append({"event": kind, **json.loads(line.removeprefix("data: "))})
    return events


async def states_scenario(url: str, deployment_id: UUID, runtime: Runtime) -> None:
    path = f"/api/v1/deployments/{deployment_id}/events"
    async with httpx.AsyncClient(base_url=url, auth=AUTH, timeout=60) as client:
        first: asyncio.Queue[None] = asyncio.Queue()
        from_start = asyncio.create_task(follow(client, path, first))
        resumed = asyncio.create_task(follow(client, f"{path}?after=1", first))
        await asyncio.wait_for(first.get(), 30)
        # Built while the streams are open: they get the rest in later reads.
        await asyncio.to_thread(runtime.catch_up)
        streams = await asyncio.wait_for(asyncio.gather(from_start, resumed), 60)
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed"
    expected = [(v, runtime.app.deployment(deployment_id, version=v).state) for v in range(1, deployment.version + 1)]
    for events, after in zip(streams, (0, 1), strict=True):
        progress = [(e["version"], e["state"]) for e in events if e["event"] == "progress"]
        assert progress == expected[after:]
        assert {"type", "at", "actor", "summary"} <= set(events[0])
        assert events[-1] == {"event": "end", "state": "deployed", "version": deployment.version}


def test_each_progress_event_carries_the_state_it_left_the_deployment_in(runtime: Runtime) -> None:
    deployment_id = active_deployment(runtime)
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
    with serve(app) as url:
        asyncio.run(states_scenario(url, deployment_id, runtime))
