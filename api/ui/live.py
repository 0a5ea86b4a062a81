"""One server-sent event stream for every console page: "the store moved to position N".

Pages then fetch the part they show with `min_position=N`, so what they draw includes the
change. The stream waits on the shared notifier, never polls the database per viewer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from api.notify import Notifier
from api.ui.context import ConsoleRoute, SessionDep

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
KEEPALIVE_SECONDS = 15.0


async def positions(request: Request, notifier: Notifier, after: int) -> AsyncIterator[bytes]:
    # Tell the browser to reconnect quickly if the connection drops.
    yield b"retry: 1000\n\n"
    while not await request.is_disconnected():
        position = await notifier.wait(after, KEEPALIVE_SECONDS)
        if position > after:
            after = position
            yield f"id: {position}\nevent: changed\ndata: {position}\n\n".encode()
        else:
            yield b": keepalive\n\n"


@router.get("/events")
async def events(
    request: Request, session: SessionDep, after: int | None = Query(None, ge=0, description="The page's position")
) -> StreamingResponse:
    """From the position the page was drawn at (or the last event seen, on reconnection)."""
    notifier: Notifier = request.app.state.notifier
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() else after if after is not None else notifier.position
    return StreamingResponse(
        positions(request, notifier, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
