"""Server-side CPU of a command without network: the FastAPI app called in process (ASGI).

PATCH /api/v1/services/{id} through the whole app (middlewares, routing, dependencies, the route
in the thread pool, serialisation) by a scope/receive/send loop, no uvicorn, no socket; next to
the same command on the application object. Prints per round: the ASGI p50, the process CPU per
request, the event loop thread's CPU per request (the framework's share: the command itself runs
in a worker thread), the in-process p50 and the in-process command's CPU.
`--checkout DIR` imports the code of another checkout (e.g. a worktree of main) for a comparison
in the same run: `python -m scripts.bench.asgi --checkout ../main` from this checkout.
`--loop asyncio` runs it on the standard library's event loop instead of uvloop (what `serve` uses).
Usage: .venv/bin/python -m scripts.bench.asgi [--requests 1000] [--rounds 2] [--checkout DIR] [--profile FILE]
       [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POOL = "/DC0/host/DC0_C0/Resources"


async def call(app: Any, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode()), (b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out


async def run(url: str, requests: int, rounds: int, profile: str | None) -> None:
    from adapters.runtime import Runtime
    from adapters.settings import Settings
    from api.app import create_app
    from scripts.bench.common import PASSWORD

    print(f"code: {Path(sys.modules[create_app.__module__].__file__ or '').parent.parent}")
    settings = Settings(database_url=url, admin_password=PASSWORD)
    runtime = Runtime(settings)
    try:
        runtime.ensure_admin()
        app = create_app(settings, runtime=runtime, start_workers=False)
        credentials = base64.b64encode(f"admin:{PASSWORD}".encode())
        headers = [(b"authorization", b"Basic " + credentials), (b"content-type", b"application/json")]
        stage = {"name": "int", "resource_pool": f"{POOL}/asgi"}
        created = await call(
            app, "POST", "/api/v1/services", json.dumps({"name": "asgi", "stages": [stage]}).encode(), headers
        )
        service_id = json.loads(created["body"])["id"]

        async def patch(n: int, tag: str) -> list[float]:
            latencies = []
            for i in range(n):
                body = json.dumps({"description": f"{tag} {i}"}).encode()
                started = time.perf_counter()
                answer = await call(app, "PATCH", f"/api/v1/services/{service_id}", body, headers)
                latencies.append(time.perf_counter() - started)
                if answer["status"] != 200:
                    raise RuntimeError(answer)
            return latencies

        await patch(100, "warm-up")
        for r in range(rounds):
            process, thread = time.process_time(), time.thread_time()
            latencies = await patch(requests, f"round {r}")
            process, thread = time.process_time() - process, time.thread_time() - thread
            direct = []
            direct_cpu = time.process_time()
            for i in range(requests):
                started = time.perf_counter()
                runtime.app.update_service(service_id, f"direct {r} {i}", actor="admin")
                direct.append(time.perf_counter() - started)
            direct_cpu = time.process_time() - direct_cpu
            print(
                f"round {r + 1}: ASGI p50 {statistics.median(latencies) * 1000:.3f} ms, "
                f"CPU/request {process / requests * 1000:.3f} ms "
                f"(event loop thread {thread / requests * 1000:.3f} ms); "
                f"in process p50 {statistics.median(direct) * 1000:.3f} ms, "
                f"CPU/command {direct_cpu / requests * 1000:.3f} ms",
                flush=True,
            )
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await patch(requests, "profiled")
            profiler.disable()
            profiler.dump_stats(profile)
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--checkout", help="import the code of this checkout instead")
    parser.add_argument("--profile", help="then profile one more round (cProfile, the event loop thread) into FILE")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.checkout:
        sys.path.insert(0, args.checkout)
    from scripts.bench.common import schema

    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    print(f"event loop: {args.loop}")
    with schema() as (_, url), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(url, args.requests, args.rounds, args.profile))


if __name__ == "__main__":
    main()
