"""The HTTP side of the client: one httpx client per command, and the exit codes scripts rely on.

Exit codes: 0 done, 1 a deployment failed, 2 usage (bad arguments, not logged in), 3 refused by the
server (4xx: validation, permission, conflict, not found), 4 unreachable or unavailable (connection
errors, timeouts, 5xx)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from api.client.credentials import Credentials

DONE, FAILED, USAGE, REFUSED, UNREACHABLE = 0, 1, 2, 3, 4
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ClientError(Exception):
    """Ends the command with `exit_code` after printing `message` on standard error."""

    def __init__(self, message: str, exit_code: int, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        self.body = body


def _message(response: httpx.Response) -> tuple[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase, None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        field = f" (field {error['field']})" if error.get("field") else ""
        return f"{error.get('message', '')}{field}", body
    return str(body)[:500], body


def check(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    message, body = _message(response)
    code = UNREACHABLE if response.status_code >= 500 else REFUSED
    raise ClientError(f"{response.status_code}: {message}", code, response.status_code, body)


class Api:
    """Calls under `<url>/api/v1` with the stored Bearer token."""

    def __init__(self, credentials: Credentials, transport: httpx.BaseTransport | None = None) -> None:
        self.credentials = credentials
        self.base = credentials.url.rstrip("/")
        self.http = httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {credentials.token}", "User-Agent": "stagekeeper-cli"},
            timeout=TIMEOUT,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        with unreachable(self.base):
            response = check(self.http.request(method, path, **kwargs))
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, json=body if body is not None else {})

    @contextmanager
    def stream(self, path: str, headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        with unreachable(self.base):
            timeout = httpx.Timeout(None, connect=5.0)
            with self.http.stream("GET", path, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    check(response)
                yield response


@contextmanager
def unreachable(url: str) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as error:
        raise ClientError(f"cannot reach {url}: {error or type(error).__name__}", UNREACHABLE) from error
