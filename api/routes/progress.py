"""Deployment progress as server-sent events.

A stream costs no thread while it waits: it is an async generator watching its deployment on the
app's one shared Notifier, which wakes it only for writes to that deployment (or, once per poll
at most, for another process's writes, whose aggregates are not known here). It then reads the
deployment's new events once, in a worker thread of the streams' own small limiter, so that
streams never take the threads the sync routes run in, and applies them to its own copy of the
deployment to tell each event's resulting state. Each caller may hold a bounded number of open
streams.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import anyio
import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from adapters.runtime import Runtime
from api.access import read_deployment
from api.deps import PrincipalDep, RuntimeDep
from api.notify import Notifier
from api.responses import errors
from api.responses.deployments import progress_stream
from api.routing import OneHopRoute
from domain.deployment import ACTIVE_STATES, Deployment
from domain.errors import TooManyRequestsError
from projections.summaries import summarise

router = APIRouter(route_class=OneHopRoute, tags=["deployments"])
HEARTBEAT_SECONDS = 15.0
# Threads the stream reads of one app share (their own limiter, not the sync routes' 40).
READ_THREADS = 4


def read_limiter() -> anyio.CapacityLimiter:
    """The limiter every stream of one app reads in (built in create_app)."""
    return anyio.CapacityLimiter(READ_THREADS)


class StreamSlots:
    """How many streams each caller holds open, bounded per caller."""

    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        with self._lock:
            held = self._open.get(caller, 0)
            if held >= self.per_caller:
                raise TooManyRequestsError(
                    f"{caller} already has {held} progress streams open (the limit is {self.per_caller}); "
                    "close one first",
                    field="max_streams_per_caller",
                )
            self._open[caller] = held + 1

    def total(self) -> int:
        """Streams open now, every caller's."""
        with self._lock:
            return sum(self._open.values())

    def give_back(self, caller: str) -> None:
        with self._lock:
            held = self._open.get(caller, 0) - 1
            if held > 0:
                self._open[caller] = held
            else:
                self._open.pop(caller, None)


class HeldStream(StreamingResponse):
    """A streaming response that gives its caller's slot back however it ends (even unsent)."""

    def __init__(self, content: AsyncIterator[bytes], slots: StreamSlots, caller: str) -> None:
        super().__init__(
            content, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        self._slots = slots
        self._caller = caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back(self._caller)


def _payload(event: Any, state: str) -> dict[str, Any]:
    data = {k: v for k, v in vars(event).items() if not k.startswith("_")}
    kind = type(event).__qualname__
    plain = json.loads(json.dumps(data, default=str))
    return {
        "version": event.originator_version,
        "type": kind,
        "at": event.timestamp.isoformat(),
        "actor": data.get("actor"),
        "machine": data.get("machine") if isinstance(data.get("machine"), str) else None,
        "summary": summarise(kind, plain),
        "state": state,
    }


@dataclass
class Batch:
    frames: list[bytes]
    after: int
    ended: bool
    # The stream's own copy of the deployment, at the last version read.
    deployment: Deployment


def _frame(event: Any, state: str) -> bytes:
    body = json.dumps(_payload(event, state), separators=(",", ":"))
    return f"id: {event.originator_version}\nevent: progress\ndata: {body}\n\n".encode()


def read_after(runtime: Runtime, deployment_id: UUID, after: int, deployment: Deployment | None = None) -> Batch:
    """The deployment's events after version `after` as SSE frames, and the `end` frame once it
    rests (blocking: run in a worker thread). Reads the events past `deployment` (the stream's
    copy; None on the first read: the copy at version `after` is loaded) once, and applies them
    to the copy, which gives each event's resulting state without loading the deployment again."""
    if deployment is None:
        deployment = runtime.app.deployment(deployment_id, version=after) if after > 0 else None
    start = deployment.version if deployment is not None else 0
    frames: list[bytes] = []
    for event in runtime.app.events.get(deployment_id, gt=start):
        deployment = cast(Deployment, cast(Any, event).mutate(deployment))
        if event.originator_version > after:
            after = event.originator_version
            frames.append(_frame(event, deployment.state))
    if deployment is None:
        # Checked before the stream starts (404); only a store emptied since gets here.
        raise LookupError(f"deployment {deployment_id} has no events")
    ended = deployment.state not in ACTIVE_STATES and after >= deployment.version
    if ended:
        end = json.dumps({"state": deployment.state, "version": deployment.version})
        frames.append(f"event: end\ndata: {end}\n\n".encode())
    return Batch(frames, after, ended, deployment)


async def stream(
    runtime: Runtime,
    notifier: Notifier,
    limiter: anyio.CapacityLimiter,
    deployment_id: UUID,
    after: int,
    limit: float,
    heartbeat: float,
) -> AsyncGenerator[bytes]:
    """Every event of the deployment after version `after`, then new ones as they are stored,
    until the deployment rests (deployed, failed, undeployed) or `limit` seconds pass."""
    deadline = time.monotonic() + limit
    last_sent = time.monotonic()
    copy: Deployment | None = None
    with notifier.watch(deployment_id):
        while True:
            # Taken before reading: a write landing during the read makes the wait return at once.
            seen = notifier.mark(deployment_id)
            batch = await anyio.to_thread.run_sync(read_after, runtime, deployment_id, after, copy, limiter=limiter)
            after, copy = batch.after, batch.deployment
            for frame in batch.frames:
                yield frame
            if batch.frames:
                last_sent = time.monotonic()
            if batch.ended:
                return
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                if now - last_sent >= heartbeat:
                    yield b": still working\n\n"
                    last_sent = now
                wait = min(deadline - now, heartbeat - (now - last_sent))
                if await notifier.wait_for(deployment_id, seen, wait) > seen:
                    break


@router.get(
    "/api/v1/deployments/{deployment_id}/events",
    response_class=StreamingResponse,
    responses={200: progress_stream(), **errors(401, 403, 404, 422, 429, 503)},
)
def deployment_events(
    request: Request,
    deployment_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    last_event_id: int | None = Header(None, alias="Last-Event-ID", description="Resume after this version"),
    after: int = Query(0, ge=0, description="Start after this deployment version"),
    timeout: float = Query(3600.0, gt=0, le=86400.0, description="Close the stream after this many seconds"),
) -> StreamingResponse:
    """Progress of a deployment as server-sent events (text/event-stream), ending when it rests.
    A caller may hold `max_streams_per_caller` streams open at once (429 beyond)."""
    read_deployment(runtime, who, deployment_id)  # 404 / 403 before the stream starts
    start = last_event_id if last_event_id is not None else after
    slots: StreamSlots = request.app.state.stream_slots
    notifier: Notifier = request.app.state.notifier
    limiter: anyio.CapacityLimiter = request.app.state.stream_limiter
    slots.take(who.user)
    events = stream(runtime, notifier, limiter, deployment_id, start, timeout, HEARTBEAT_SECONDS)
    return HeldStream(events, slots, who.user)
