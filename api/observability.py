"""Each HTTP request gets an id (the caller's `X-Request-ID` when it is a sane one, a new one
otherwise), returned in the `X-Request-ID` response header, attached to every log line and kept in
the metadata of every event the request writes; it is counted and timed for /metrics and logged
once when it ends (method, route, status, duration, actor). Outermost middleware: it sees every
answer, the errors of the inner ones included."""

from __future__ import annotations

import logging
import os
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.logs import printable
from adapters.metrics import Metrics
from domain.requestcontext import REQUEST_ID

log = logging.getLogger("stagekeeper.access")
HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# uuid4's version and variant bits, as `uuid.UUID(bytes=..., version=4)` sets them.
_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_SET = (0x8000 << 48) | (4 << 76)


# Request ids correlate, they protect nothing: drawn from a generator seeded from the system's
# randomness (again in a forked child), not from a system call per request (os.urandom: a few
# microseconds each on a virtual machine, on the event loop).
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_request_id() -> str:
    """32 hex digits with the layout of a random version-4 UUID (`uuid.uuid4().hex`), without
    building the UUID object."""
    return "%032x" % ((_ids.getrandbits(128) & _CLEAR) | _SET)


def outcome(status: int) -> str:
    if status < 400:
        return "accepted"
    if status in (409, 412):
        return "conflict"
    if status in (401, 403):
        return "denied"
    if status < 500:
        return "refused"
    if status == 503:
        return "unavailable"
    return "error"


def known_method(method: str) -> str:
    """The method as a metric label: one of the standard ones, or "OTHER" (bounded cardinality)."""
    return method if method in KNOWN_METHODS else "OTHER"


class _Series:
    """The labelled series one kind of request (method, route, status) counts into."""

    def __init__(self, metrics: Metrics, method: str, route: str, status: int) -> None:
        self.requests = metrics.requests.labels(method, route, str(status))
        # A progress stream lasts as long as it is watched: its duration says nothing.
        self.seconds = None if route.endswith("/events") else metrics.request_seconds.labels(method, route)
        self.commands = self.command_seconds = None
        if method in COMMAND_METHODS and route.startswith("/api/"):
            command = f"{method} {route}"
            self.commands = metrics.commands.labels(command, outcome(status))
            self.command_seconds = metrics.command_seconds.labels(command)


class RequestObservability:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Looked up once per kind of request (the library's `labels()` takes a lock and checks
        # the labels each time); bounded: known methods x route templates x statuses.
        self._series: dict[tuple[str, str, int], _Series] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                offered = value.decode("latin-1")
                break
        request_id = offered if _SANE.fullmatch(offered) else new_request_id()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            self._record(scope, request_id, status, time.perf_counter() - started)

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        method = known_method(str(scope["method"]))
        route = getattr(scope.get("route"), "path", None) or "(unmatched)"
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self.metrics, method, route, status)
        series.requests.inc()
        if series.seconds is not None:
            series.seconds.observe(seconds)
        if series.commands is not None and series.command_seconds is not None:
            series.commands.inc()
            series.command_seconds.observe(seconds)
        principal = getattr(scope.get("state", {}).get("principal"), "user", None)
        log.info(
            "%s %s %d %.1f ms",
            method,
            printable(str(scope.get("path", ""))),
            status,
            seconds * 1000,
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "actor": principal,
            },
        )
