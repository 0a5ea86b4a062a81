"""What the fixed stack (uvicorn, FastAPI, pydantic) costs the same command, next to Stagekeeper (issue 15).

The goal "HTTP adds < 1 ms to the in-process command, p50 <= 2x in-process" compares `stagekeeper
serve` with the command called on the application object. This bench puts, in one run and on the
same PostgreSQL schema, the same command (`update_service`, one event) behind servers that do less
and less around it, each timed by the same lean keep-alive client (`scripts.bench.commands.lean`)
for the same number of seconds, in an order that turns from round to round:

- `in process`: the command called directly (the goal's baseline);
- `bare ASGI, no hop`: the same as the next line, the command run on the event loop itself (no
  server may do that: each command would stop every other request while it waits for PostgreSQL);
  the difference between the two is what the hop costs;
- `bare ASGI + hop`: uvicorn (httptools, uvloop, as `serve`) with a hand-written ASGI callable that
  reads the body, `json.loads` it, runs the command through the API's thread-pool hop
  (`api.routing.run_in_pool`) and answers `{"id", "version"}` with `json.dumps`: nothing the stack
  adds, no check; the floor of an HTTP server on this event store;
- `FastAPI, minimal`: a FastAPI app with one PATCH route (a pydantic body, a UUID path parameter, a
  response model), a plain `def` endpoint (FastAPI's own thread pool): what the framework alone adds,
  no authentication, no middleware, no log line;
- `FastAPI, minimal, one hop`: the same with an `async def` endpoint that runs the command through
  `run_in_pool` (Stagekeeper's hop, api/routing.py);
- `serve, no workers`: `stagekeeper serve` with STAGEKEEPER_SERVE_WORKERS=false (the in-process
  command runs no background workers either): every check (HTTP Basic, the text rules, body
  limits, idempotency keys, If-Match), its log line and metrics;
- `serve`: `stagekeeper serve` as it runs by default (its projections and process manager beside).

The six servers run at once, on the same schema: the default `serve`'s workers project every line's
commands (they poll the log), so each line is timed beside the same background projection work, the
in-process command too.

Each line prints its p50 (min / median / max over the rounds), what it adds to the in-process p50
of the same round, and its p50 as a ratio of it. The difference between two lines is what the
layers between them cost; the `bare ASGI + hop` line is what no Python server on this stack can go
below.
Usage: .venv/bin/python -m scripts.bench.stack_floor [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.bench.commands import in_process, lean, register
from scripts.bench.common import free_port, percentile, schema, served, wait_for_port

# The command behind a hand-written ASGI callable: the least an HTTP server on this store can do.
BARE = """
import json, sys, uuid
from adapters.runtime import Runtime
from adapters.settings import Settings
from api.routing import run_in_pool

runtime = Runtime(Settings(database_url=sys.argv[2]))

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    service_id = uuid.UUID(scope["path"].rsplit("/", 1)[1])
    data = json.loads(body)
    if sys.argv[3] == "inline":  # the command on the event loop: it blocks every other request
        outcome = runtime.app.update_service(service_id, data["description"], actor="admin")
    else:
        outcome = await run_in_pool(runtime.app.update_service, service_id, data["description"], actor="admin")
    answer = json.dumps({"id": str(outcome.value.id), "version": outcome.value.version}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})
"""

# The same command behind the framework alone: one route, a body model, a response model.
MINIMAL = """
import sys, uuid
from fastapi import FastAPI
from pydantic import BaseModel
from adapters.runtime import Runtime
from adapters.settings import Settings
from api.routing import run_in_pool

runtime = Runtime(Settings(database_url=sys.argv[2]))
app = FastAPI()

class Patch(BaseModel):
    description: str

class Answer(BaseModel):
    id: uuid.UUID
    version: int
    description: str

if sys.argv[3] == "hop":
    @app.patch("/api/v1/services/{service_id}", response_model=Answer)
    async def patch(service_id: uuid.UUID, body: Patch) -> Answer:
        outcome = await run_in_pool(runtime.app.update_service, service_id, body.description, actor="admin")
        return Answer(id=outcome.value.id, version=outcome.value.version, description=outcome.value.description)
else:
    @app.patch("/api/v1/services/{service_id}", response_model=Answer)
    def patch(service_id: uuid.UUID, body: Patch) -> Answer:
        outcome = runtime.app.update_service(service_id, body.description, actor="admin")
        return Answer(id=outcome.value.id, version=outcome.value.version, description=outcome.value.description)
"""

SERVE = """
import sys, uvicorn
from api.cli import _event_loop, _http_parser
exec(compile(open(sys.argv[4]).read(), "app", "exec"))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False,
            http=_http_parser(), loop=_event_loop())
"""


@contextmanager
def uvicorn_app(source: str, url: str, mode: str, tmp: Path) -> Iterator[str]:
    """`source` (defining `app`) on uvicorn, configured as `stagekeeper serve` configures it."""
    port = free_port()
    app_file = tmp / f"app-{mode}-{port}.py"
    app_file.write_text(source)
    log = (tmp / f"app-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port), url, mode, str(app_file)], stdout=log, stderr=log
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def timed(url: str, service: str, seconds: float) -> float:
    lean(url, service, min(1.0, seconds))  # warm-up: connections, prepared statements, first requests
    latencies, errors = lean(url, service, seconds)
    if errors:
        raise RuntimeError(f"{errors} requests to {url} did not answer 200")
    return percentile(latencies, 0.5)


def bound(url: str, service: str, seconds: float) -> Callable[[], float]:
    return lambda: timed(url, service, seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    labels = [
        "bare ASGI, no hop",
        "bare ASGI + hop",
        "FastAPI, minimal",
        "FastAPI, minimal, one hop",
        "serve, no workers",
        "serve",
    ]
    figures: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory() as directory, schema() as (_, url):
        tmp = Path(directory)
        with (
            served(url, tmp / "serve.log") as serve,
            served(url, tmp / "serve-lean.log", STAGEKEEPER_SERVE_WORKERS="false") as serve_lean,
            uvicorn_app(BARE, url, "bare", tmp) as bare,
            uvicorn_app(BARE, url, "inline", tmp) as bare_inline,
            uvicorn_app(MINIMAL, url, "plain", tmp) as minimal,
            uvicorn_app(MINIMAL, url, "hop", tmp) as minimal_hop,
        ):
            services = register(serve, len(labels), "floor")
            urls = dict(zip(labels, [bare_inline, bare, minimal, minimal_hop, serve_lean, serve], strict=True))
            runs = {label: bound(urls[label], services[i], args.seconds) for i, label in enumerate(labels)}
            for round_ in range(args.rounds):
                own = in_process(url, max(200, int(args.seconds * 300)))
                base = percentile(own, 0.5)
                order = labels[round_ % len(labels) :] + labels[: round_ % len(labels)]
                if round_ % 2:
                    order.reverse()
                for label in order:
                    figures[label].append((runs[label](), base))
                print(f"round {round_ + 1}: in process p50 {base * 1000:.2f} ms; " + ", ".join(
                    f"{label} {figures[label][-1][0] * 1000:.2f}" for label in labels) + " ms", flush=True)  # fmt: skip
    bases = [base for _, base in figures[labels[0]]]
    print(f"\nin process: p50 {spread(bases, 1000)} ms (min / median / max of {args.rounds} rounds)")
    for label in labels:
        p50s = [p50 for p50, _ in figures[label]]
        adds = [p50 - base for p50, base in figures[label]]
        ratios = [p50 / base for p50, base in figures[label]]
        print(f"{label:<27} p50 {spread(p50s, 1000)} ms; adds {spread(adds, 1000)} ms; {spread(ratios, 1, 'x')}")
    print("goal (issue 15): adds < 1 ms and <= 2x, for `serve`; every line from `FastAPI, minimal` down is on FastAPI")


def spread(values: list[float], scale: float, unit: str = "") -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{low * scale:.2f}{unit} / {middle * scale:.2f}{unit} / {high * scale:.2f}{unit}"


if __name__ == "__main__":
    main()
