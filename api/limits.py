"""Request bodies: how big (413) and what type (415), decided before any route runs.

An ASGI middleware, so a body is measured while it is read: a Content-Length over the limit is
refused without reading anything, and a chunked body without Content-Length is refused as soon
as the bytes received pass the limit (it is never buffered beyond it). Every route of the API
reads JSON, so under /api/ a request that carries a body must say `application/json` (or a
`+json` type); anything else is 415, before the body is read when Content-Length announces
it, once it is read (up to the limit) when it comes without one: a Transfer-Encoding header with
no body bytes behind it is no body.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from email.message import Message
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_body

Event = MutableMapping[str, Any]
JSON_PREFIX = "/api/"
# Paths whose body may be a file streamed through as it arrives: a body of one of STREAMED_TYPES
# is bounded by the route itself (the media upload: STAGEKEEPER_MEDIA_MAX_BYTES), and nothing in
# front of it may read it first (an undeclared method is the router's 405). Any other body there
# is held to the limits below like everywhere else.
STREAMED = frozenset({"/api/v1/media", "/ui/media/upload"})
STREAMED_TYPES = ("application/octet-stream", "application/x-iso9660-image")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


@functools.lru_cache(maxsize=256)
def is_json(content_type: str | None) -> bool:
    # Parsed by the standard library's rules (as FastAPI's handler does) once per distinct header.
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class BodyLimits:
    """At most `max_body_bytes` of body per request, and JSON bodies only under /api/."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type, length, transfer_encoding = _body_headers(scope)
        if scope.get("path") in STREAMED and media_type(content_type) in STREAMED_TYPES:
            await self.app(scope, receive, send)
            return
        declared = length is not None and length.strip() not in ("", "0")
        if not declared and not transfer_encoding:
            await self.app(scope, receive, send)
            return
        if declared and length is not None and length.strip().isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(send)
            return
        not_json = str(scope.get("path", "")).startswith(JSON_PREFIX) and not is_json(content_type)
        if declared and not_json:
            await _unsupported(send)
            return
        # A body without Content-Length is read (up to the limit) before its type is judged: a
        # Transfer-Encoding header alone (a GET carrying one, say) may come with no body at all.
        messages = await self._read(receive)
        if messages is None:
            await self._too_large(send)
            return
        if not_json and any(m.get("body") for m in messages if m["type"] == "http.request"):
            await _unsupported(send)
            return
        await self.app(scope, _replay(messages, receive), send)

    async def _read(self, receive: Receive) -> list[Event] | None:
        """The body's messages, or None as soon as they pass the limit (the rest is never read)."""
        messages: list[Event] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # the client went away: let the app see it
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    async def _too_large(self, send: Send) -> None:
        await _answer(
            send,
            413,
            "too_large",
            f"the request body is larger than {self.max_body_bytes} bytes (STAGEKEEPER_MAX_BODY_BYTES)",
            "body",
        )


def _body_headers(scope: Scope) -> tuple[str | None, str | None, bool]:
    """The first Content-Type and Content-Length of the request and whether it has a
    Transfer-Encoding header (what starlette's `Headers` would say), in one pass over them."""
    content_type = length = None
    transfer_encoding = False
    for key, value in scope["headers"]:
        if key == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif key == b"content-length":
            if length is None:
                length = value.decode("latin-1")
        elif key == b"transfer-encoding":
            transfer_encoding = True
    return content_type, length, transfer_encoding


def _replay(messages: list[Event], receive: Receive) -> Callable[[], Awaitable[Event]]:
    """A receive() that gives the messages already read, then whatever the client sends next."""
    pending = list(messages)

    async def replay() -> Event:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _unsupported(send: Send) -> None:
    await _answer(
        send,
        415,
        "unsupported_media_type",
        "the request body must be JSON, sent with content-type: application/json",
        "content-type",
    )


async def _answer(send: Send, status: int, code: str, message: str, field: str) -> None:
    body = json.dumps(error_body(code, message, field)).encode()
    # The rest of the body is left unread, so the connection cannot carry another request.
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
