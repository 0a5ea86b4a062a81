"""Log lines, metric labels and settings of the observability layer (no I/O)."""

from __future__ import annotations

import json
import logging

import pytest

from adapters.logs import JsonFormatter, RequestIdFilter, TextFormatter
from adapters.metrics import InstrumentedDriver, Metrics
from adapters.settings import metrics_bind
from api.observability import outcome
from domain.errors import VCenterFaultError
from domain.requestcontext import REQUEST_ID


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("stagekeeper.test", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_carries_the_request_id_and_the_extra_fields() -> None:
    token = REQUEST_ID.set("req-42")
    try:
        line = record("POST /x 202", status=202, actor="olivia")
        RequestIdFilter().filter(line)
    finally:
        REQUEST_ID.reset(token)
    parsed = json.loads(JsonFormatter().format(line))
    assert parsed["request_id"] == "req-42"
    assert parsed["status"] == 202
    assert parsed["actor"] == "olivia"
    assert parsed["message"] == "POST /x 202"
    assert parsed["level"] == "info"
    assert "args" not in parsed


def test_text_lines_name_the_request_only_inside_one() -> None:
    outside = record("idle")
    RequestIdFilter().filter(outside)
    assert "[request" not in TextFormatter().format(outside)
    inside = record("busy", request_id="abc")
    assert TextFormatter().format(inside).endswith("busy [request abc]")


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "accepted"), (202, "accepted"), (409, "conflict"), (412, "conflict"), (403, "denied"), (422, "refused"),
     (503, "unavailable"), (500, "error")],
)  # fmt: skip
def test_outcome_classes(status: int, expected: str) -> None:
    assert outcome(status) == expected


def test_metrics_address_parsing() -> None:
    assert metrics_bind("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert metrics_bind("[::1]:9464") == ("::1", 9464)
    assert metrics_bind(":9464") == ("0.0.0.0", 9464)  # noqa: S104
    for bad in ("9464", "host:", "host:0", "host:70000", "host:x"):
        with pytest.raises(ValueError, match="host:port"):
            metrics_bind(bad)


class Driver:
    def clone(self, name: str) -> str:
        return name

    def destroy(self, vm_id: str) -> None:
        raise VCenterFaultError("gone")


def test_the_driver_wrapper_counts_calls_and_faults_by_method() -> None:
    metrics = Metrics()
    driver = InstrumentedDriver(Driver(), metrics)
    assert driver.clone("web1") == "web1"
    with pytest.raises(VCenterFaultError):
        driver.destroy("vm-1")
    text = metrics.render().decode()
    assert 'stagekeeper_vcenter_calls_total{method="clone"} 1.0' in text
    assert 'stagekeeper_vcenter_faults_total{error="VCenterFaultError",method="destroy"} 1.0' in text
    assert 'stagekeeper_vcenter_call_seconds_count{method="clone"} 1.0' in text
