"""The request being served, for the record: its id goes into the metadata of every event it writes.

Set by the HTTP layer (api/observability.py) for the duration of a request; a context variable
follows the request into the worker thread where commands run. Events written outside a request
(the process manager, schedulers) carry no request id."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("stagekeeper-request-id", default=None)


def current_request_id() -> str | None:
    return REQUEST_ID.get()
