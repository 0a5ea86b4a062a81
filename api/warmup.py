"""The routes' state built at start, not by the first request that needs it.

FastAPI builds what each included router's routes need for matching (their effective paths,
parameters and response adapters) the first time a request walks past them: the first request
after start that is not matched early, a 404 or a route of the last router, paid 0.9 s on a quiet
2-core machine and 2-3.6 s on a loaded one (py-spy: `_IncludedRouter.effective_candidates`,
`_populate_api_route_state`, pydantic `TypeAdapter` builds). `warm_routes` sends one request for a
path no route has through the router alone (not the middlewares: no request id, log line or
metric for it), so every router is walked once before the server takes its first connection.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message

WARM_PATH = "/.stagekeeper-warm-up"


async def warm_routes(router: ASGIApp) -> int:
    """Walk every route once with a request no route matches; the status it got (404)."""
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": WARM_PATH,
        "raw_path": WARM_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    try:
        await router(scope, receive, send)
    except HTTPException as error:  # the router's own "not found", raised inside an application
        status = error.status_code
    return status
