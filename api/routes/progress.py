"""Deployment progress as server-sent events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from adapters.runtime import Runtime
from api.access import read_deployment
from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.deployments import progress_stream
from domain.deployment import ACTIVE_STATES
from projections.summaries import summarise

router = APIRouter(tags=["deployments"])
HEARTBEAT_SECONDS = 15.0


def _payload(event: Any, state: str) -> dict[str, Any]:
    data = {k: v for k, v in vars(event).items() if not k.startswith("_")}
    kind = type(event).__qualname__
    plain = json.loads(json.dumps(data, default=str))
    return {
        "version": event.originator_version,
        "type": kind,
        "at": event.timestamp.isoformat(),
        "actor": data.get("actor"),
        "summary": summarise(kind, plain),
        "state": state,
    }


def stream(runtime: Runtime, deployment_id: UUID, after: int, poll: float, limit: float) -> Iterator[bytes]:
    """Every event of the deployment after version `after`, then new ones as they are stored,
    until the deployment rests (deployed, failed, undeployed) or `limit` seconds pass."""
    deadline = time.monotonic() + limit
    last_beat = time.monotonic()
    while True:
        deployment = runtime.app.deployment(deployment_id)
        for event in runtime.app.events.get(deployment_id, gt=after, lte=deployment.version):
            after = event.originator_version
            state = runtime.app.deployment(deployment_id, version=after).state
            body = json.dumps(_payload(event, state), separators=(",", ":"))
            yield f"id: {after}\nevent: progress\ndata: {body}\n\n".encode()
            last_beat = time.monotonic()
        if deployment.state not in ACTIVE_STATES and after >= deployment.version:
            end = json.dumps({"state": deployment.state, "version": deployment.version})
            yield f"event: end\ndata: {end}\n\n".encode()
            return
        if time.monotonic() > deadline:
            return
        if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
            yield b": still working\n\n"
            last_beat = time.monotonic()
        time.sleep(poll)


@router.get(
    "/api/v1/deployments/{deployment_id}/events",
    response_class=StreamingResponse,
    responses={
        200: progress_stream(),
        **errors(401, 403, 404, 422, 503),
    },
)
def deployment_events(
    deployment_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    last_event_id: int | None = Header(None, alias="Last-Event-ID", description="Resume after this version"),
    after: int = Query(0, ge=0, description="Start after this deployment version"),
    timeout: float = Query(3600.0, gt=0, le=86400.0, description="Close the stream after this many seconds"),
) -> StreamingResponse:
    """Progress of a deployment as server-sent events (text/event-stream), ending when it rests."""
    read_deployment(runtime, who, deployment_id)  # 404 / 403 before the stream starts
    start = last_event_id if last_event_id is not None else after
    return StreamingResponse(
        stream(runtime, deployment_id, start, runtime.settings.poll_seconds, timeout),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
