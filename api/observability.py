"""Each HTTP request gets an id (the caller's `X-Request-ID` when it is a sane one, a new one
otherwise), returned in the `X-Request-ID` response header, attached to every log line and kept in
the metadata of every event the request writes; it is counted and timed for /metrics and logged
once when it ends (method, route, status, duration, actor). Outermost middleware: it sees every
answer, the errors of the inner ones included."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.logs import printable
from adapters.metrics import Metrics
from domain.requestcontext import REQUEST_ID

log = logging.getLogger("stagekeeper.access")
HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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


class RequestObservability:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = offered if _SANE.fullmatch(offered) else uuid.uuid4().hex
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
        self.metrics.requests.labels(method, route, str(status)).inc()
        streaming = route.endswith("/events")  # a progress stream lasts as long as it is watched
        if not streaming:
            self.metrics.request_seconds.labels(method, route).observe(seconds)
        if method in COMMAND_METHODS and route.startswith("/api/"):
            command = f"{method} {route}"
            self.metrics.commands.labels(command, outcome(status)).inc()
            self.metrics.command_seconds.labels(command).observe(seconds)
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
