"""Idempotency-Key on every POST: the same key (per caller) and body give the same answer, and
the command never takes effect twice.

The key's record is saved in the same atomic write as the command's events (the application's
commit() picks it up from `pending_request`), then the answer is added to it. A repeat with the
same key and body gets the stored answer (`Idempotent-Replayed: true`); with another body, 422
naming the header. A repeat that arrives while the first is still running waits (bounded) for
its answer. Requests without the header, and callers that fail to authenticate, pass through.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Authenticator
from api.errors import error_body
from api.limits import STREAMED
from domain.application import StagekeeperApplication
from domain.errors import StagekeeperError, UnavailableError
from domain.requests import HEADER, DuplicateRequestError, PendingRequest, RequestRecord, check_key

log = logging.getLogger("stagekeeper.idempotency")

KEPT_HEADERS = ("content-type", "location", "etag", "x-stagekeeper-position")
# Answers that show a secret once (a new API token): the secret is never stored, so a repeat is
# told that the first request took effect instead of getting the secret again.
SECRET_ANSWERS = frozenset({"/api/v1/tokens"})
SECRET_NOT_KEPT = error_body(
    "answer_not_kept",
    f"the request with this {HEADER} took effect; its answer held a secret that is shown only once",
    HEADER,
)
POLL = 0.05
_KEY = HEADER.lower().encode()


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, application: StagekeeperApplication, authenticator: Authenticator, wait_seconds: float
    ) -> None:
        self.app = app
        self.application = application
        self.authenticator = authenticator
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        raw_key = headers.get(_KEY)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        try:
            key = check_key(raw_key.decode("latin-1"))
        except StagekeeperError as error:
            await _send_json(send, 422, error_body(error.code, error.message, error.field))
            return
        if scope.get("path") in STREAMED:
            # A streamed upload is never read ahead (api/limits.py): its key is checked, not kept;
            # the medium's unique name keeps a repeat from taking effect twice (409).
            await self.app(scope, receive, send)
            return
        raw_authorization = headers.get(b"authorization")
        authorization = raw_authorization.decode("latin-1") if raw_authorization else None
        try:
            # A credential verified moments ago is found without I/O; a miss is checked in a thread.
            principal = self.authenticator.cached(authorization)
            if principal is None:
                principal = await anyio.to_thread.run_sync(self.authenticator.authenticate, authorization)
        except StagekeeperError:
            # Not authenticated: the route answers that, and nothing can take effect.
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        fingerprint = _fingerprint(scope, body)
        try:
            record = await anyio.to_thread.run_sync(self.application.request_record, principal.user, key)
        except UnavailableError as error:
            await _send_json(send, 503, error_body(error.code, error.message, error.field), _retry(self.wait_seconds))
            return
        if record is not None:
            await self._repeat(send, principal.user, key, record, fingerprint)
            return
        await self._first(scope, body, send, PendingRequest(principal.user, key, fingerprint))

    async def _first(self, scope: Scope, body: bytes, send: Send, request: PendingRequest) -> None:
        answer = _Answer()
        token = self.application.pending_request.set(request)
        try:
            await self.app(scope, _replay(body), answer.capture)
        except DuplicateRequestError:
            # Raised while recording a refusal (an exception handler): the first request won.
            if not request.duplicate:
                raise
        finally:
            self.application.pending_request.reset(token)
        if request.duplicate:
            # Another request with this key took effect first: its answer is the answer.
            record = await anyio.to_thread.run_sync(self.application.request_record, request.actor, request.key)
            if record is not None:
                await self._repeat(send, request.actor, request.key, record, request.fingerprint)
                return
        if request.saved:
            kept = (answer.status, answer.kept_headers(), answer.body.decode("utf-8", "replace"))
            if scope["path"].rstrip("/") in SECRET_ANSWERS and answer.status < 300:
                kept = (409, {"content-type": "application/json"}, json.dumps(SECRET_NOT_KEPT))
            try:
                await anyio.to_thread.run_sync(self.application.answer_request, request.actor, request.key, *kept)
            except UnavailableError:
                # The effect and the key are saved; only the answer is not. A repeat is told so.
                log.warning("the answer to Idempotency-Key %r could not be kept", request.key)
        await answer.forward(send)

    async def _repeat(self, send: Send, actor: str, key: str, record: RequestRecord, fingerprint: str) -> None:
        if record.fingerprint != fingerprint:
            message = f"this {HEADER} was already used for another request (method, path or body differ)"
            await _send_json(send, 422, error_body("invalid", message, HEADER))
            return
        deadline = time.monotonic() + self.wait_seconds
        found: RequestRecord | None = record
        while found is not None and not found.answered and time.monotonic() < deadline:
            await anyio.sleep(POLL)
            found = await anyio.to_thread.run_sync(self.application.request_record, actor, key)
        if found is None or found.status is None:
            message = (
                f"the request with this {HEADER} took effect, but its answer is not available yet "
                "(still running, or lost in an outage); read the result back, or retry later"
            )
            await _send_json(send, 409, error_body("request_in_progress", message, HEADER), _retry(self.wait_seconds))
            return
        headers = [(k.encode(), v.encode()) for k, v in found.headers.items()]
        headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": found.status, "headers": headers})
        await send({"type": "http.response.body", "body": found.body.encode()})


class _Answer:
    """The inner app's response, held back until we know it is the one to give."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    async def capture(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def kept_headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.headers if k.decode().lower() in KEPT_HEADERS}

    async def forward(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
        digest.update(part.encode() + b"\x00")
    digest.update(body)
    return digest.hexdigest()


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body", False):
            return body


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # The body was read already; after it, the only thing left to hear is the disconnect.
        await anyio.sleep_forever()
        return {"type": "http.disconnect"}

    return receive


def _retry(seconds: float) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", str(max(1, round(seconds))).encode())]


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = json.dumps(body).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": data})
