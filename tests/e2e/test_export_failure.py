"""An audit export that fails midway must never look like a complete (or empty) export."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from adapters.runtime import Runtime
from api.app import create_app
from domain.errors import UnavailableError
from projections.store import Row
from tests.e2e.conftest import AUTH
from tests.e2e.live import serve
from tests.support import settings_for, stages

ROWS_BEFORE_FAILURE = 3


def fail_after(runtime: Runtime, count: int) -> None:
    """Make the read store's streams raise after `count` rows (the database went away midway)."""
    original = runtime.store.stream

    def stream(sql: str, params: Sequence[Any] = (), batch: int = 1000) -> Iterator[Row]:
        for number, row in enumerate(original(sql, params, batch), start=1):
            if number > count:
                raise UnavailableError("the read store is unreachable")
            yield row

    runtime.store.stream = stream  # type: ignore[method-assign]


def fill_audit(runtime: Runtime) -> None:
    for n in range(ROWS_BEFORE_FAILURE + 2):
        runtime.app.register_service(f"svc-{n}", "", stages("int", pools=f"s{n}-"), actor="admin")
    runtime.projection_follower.catch_up()


@pytest.mark.parametrize(("fmt", "error_line"), [("jsonl", '{"error":'), ("csv", "# ERROR export_failed")])
def test_an_export_failing_midway_is_aborted_and_ends_with_an_error_record(
    runtime: Runtime, fmt: str, error_line: str
) -> None:
    fill_audit(runtime)
    fail_after(runtime, ROWS_BEFORE_FAILURE)
    received: list[str] = []
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
    with (
        serve(app) as url,
        httpx.Client(base_url=url, auth=AUTH, timeout=10) as client,
        client.stream("GET", "/api/v1/audit/export", params={"format": fmt}) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(lines)
    assert received, "the rows before the failure were sent"
    assert received[-1].startswith(error_line)
    if fmt == "jsonl":
        assert json.loads(received[-1])["error"]["code"] == "export_failed"
        assert len(received) == ROWS_BEFORE_FAILURE + 1


def test_an_export_failing_before_its_first_byte_is_an_error_answer(runtime: Runtime) -> None:
    fill_audit(runtime)
    fail_after(runtime, 0)
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
    with serve(app) as url:
        response = httpx.get(url + "/api/v1/audit/export", auth=AUTH, timeout=10)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
