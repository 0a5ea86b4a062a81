"""Unit rules behind the fixes of review wave 2 (findings 1, 2, 3, 4, 9, 11): no I/O."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from adapters.logs import TextFormatter, printable
from api.auth import Principal
from api.client.commands import export_file_name
from api.observability import known_method
from api.routes.portability import content_disposition
from api.ui.session import Session, SessionCodec, password_generation
from domain.configuration import Configuration
from domain.errors import ValidationError
from domain.import_rules import check_configuration, check_service
from domain.service import Service
from tests.support import machine, stages


def test_an_invented_method_is_labelled_other() -> None:
    assert [known_method(m) for m in ("GET", "DELETE", "OPTIONS")] == ["GET", "DELETE", "OPTIONS"]
    assert {known_method(m) for m in ("X0", "get", "PROPFIND", "")} == {"OTHER"}


@pytest.mark.parametrize("unsafe", ["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u202e", "\u2066"])
def test_printable_escapes_controls_and_bidi(unsafe: str) -> None:
    text = printable(f"a{unsafe}b")
    assert unsafe not in text
    assert text.startswith("a\\")
    assert printable("給与 café /x?y") == "給与 café /x?y"


def test_a_text_log_line_stays_one_line_but_a_traceback_keeps_its_lines() -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, "GET %s", ("/a\n2026 INFO forged",), None)
    assert "\n" not in TextFormatter().format(record)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, "", 0, "failed", (), sys.exc_info())
    assert "Traceback" in TextFormatter().format(failed).splitlines()[1]


def test_the_export_file_name_header_is_latin1_for_any_name() -> None:
    header = content_disposition('給与 "a"/b\\c.stagekeeper.json')
    header.encode("latin-1")  # Starlette encodes headers as Latin-1
    assert header.startswith('attachment; filename="__ _a__b_c.stagekeeper.json"; ')
    assert header.endswith("filename*=UTF-8''%E7%B5%A6%E4%B8%8E%20%22a%22%2Fb%5Cc.stagekeeper.json")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("payroll", "payroll.stagekeeper.json"),
        ("../escaped", "_escaped.stagekeeper.json"),
        ("/etc/passwd", "_etc_passwd.stagekeeper.json"),
        ("a\\b", "a_b.stagekeeper.json"),
        ("pay\u202eroll\x07", "pay_roll_.stagekeeper.json"),
        ("..", "ID.stagekeeper.json"),
        (None, "ID.stagekeeper.json"),
        ("給与", "給与.stagekeeper.json"),
    ],
)
def test_the_cli_export_file_is_a_base_name(name: Any, expected: str) -> None:
    assert export_file_name({"service": {"name": name}}, "ID") == expected
    assert export_file_name("not a document", "ID") == "ID.stagekeeper.json"


def _service() -> Service:
    return Service(name="payroll", description="", stages=stages("int", "prod"), actor="admin", reason=None)


def test_an_honest_service_passes_the_import_rules() -> None:
    check_service(_service())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: setattr(s, "name", "pay\u202eroll"), "name"),
        (lambda s: setattr(s, "name", " payroll"), "name"),
        (lambda s: setattr(s, "description", "x\x00"), "description"),
        (lambda s: setattr(s, "stages", []), "stages"),
        (lambda s: s.stages[1].update(name="INT"), "stages[1].name"),
        (lambda s: s.stages[0].update(resource_pool="nowhere"), "stages[0].resource_pool"),
        (lambda s: s.stages[0].update(ip_pools=[{"cidr": "not a network"}]), "stages[0].ip_pools[0]"),
        (lambda s: s.stages[0].update(quota={"vcpus": -1}), "quota"),
        (lambda s: s.stages[0].update(approvals={"required": 0, "group": "cab"}), "approvals.required"),
        (lambda s: s.grants.update(g={"role": "god", "user": "eve", "group": None, "stage": None}), "grants[g].role"),
        (lambda s: s.grants.update(g={"role": "viewer", "user": None, "group": "not a dn", "stage": None}), "group"),
    ],
)
def test_a_service_state_no_command_writes_is_refused(change: Any, field: str) -> None:
    service = _service()
    change(service)
    with pytest.raises(ValidationError) as refused:
        check_service(service)
    assert refused.value.field is not None
    assert field in refused.value.field


def test_a_configuration_state_no_command_writes_is_refused() -> None:
    configuration = Configuration(
        service_id=_service().id,
        name="web",
        description="",
        networks=[],
        machines=[machine("web-1")],
        actor="admin",
        reason=None,
    )
    check_configuration(configuration)
    configuration.machines = [*configuration.machines, dict(configuration.machines[0])]
    with pytest.raises(ValidationError, match="used twice"):
        check_configuration(configuration)
    configuration.machines = [{**machine("web-1"), "cpus": 100000}]
    with pytest.raises(ValidationError, match="cpus"):
        check_configuration(configuration)


def test_the_session_carries_the_password_generation() -> None:
    first, second = password_generation("scrypt$a"), password_generation("scrypt$b")
    assert first != second
    assert "scrypt" not in first
    codec = SessionCodec(b"k", 600)
    session = Session.start(Principal("olivia", False, "local"), 1000.0, first)
    decoded = codec.decode(codec.encode(session), 1001.0)
    assert decoded is not None
    assert decoded.password == first
