"""Live progress streams cost no thread: many open streams leave the other routes answering."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from uuid import UUID

import httpx

from adapters.runtime import Runtime
from api.app import create_app
from tests.e2e.conftest import AUTH
from tests.e2e.live import serve
from tests.support import machine, settings_for, stages

STREAMS = 100


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
