"""Issue 15: the faster tag parsing and bulk NUL escaping give exactly what the plain versions gave."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import pytest

from projections.raw import _untag, fixed_iso, parse_state
from projections.store import SafeCursor, nul_free, safe_text


def reference_untag(obj: dict[str, Any]) -> Any:
    """The object hook as it was before issue 15."""
    kind = obj.get("_type_")
    if kind is None or len(obj) != 2 or "_data_" not in obj:
        return obj
    data = obj["_data_"]
    if kind == "uuid_hex":
        return f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"
    if kind == "datetime_iso":
        return fixed_iso(data)
    return data


STATES = [
    '{"a": 1}',
    "{}",
    '{"_type_": "uuid_hex", "_data_": "0123456789abcdef0123456789abcdef"}',
    '{"t": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05+00:00"}}',
    '{"t": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05.123456+00:00"}}',
    '{"t": {"_type_": "decimal_str", "_data_": "1.5"}}',
    '{"x": {"_type_": "uuid_hex"}, "y": {"_data_": 1}, "z": {"_type_": "uuid_hex", "other": 2}}',
    '{"x": {"_type_": "uuid_hex", "_data_": "00000000000000000000000000000001", "extra": 1}}',
    '{"two": {"a": 1, "b": 2}, "nested": [{"_type_": "uuid_hex", "_data_": "ffffffffffffffffffffffffffffffff"}]}',
    '{"_type_": null, "_data_": 3}',
]


def test_the_object_hook_parses_every_shape_as_before() -> None:
    for state in STATES:
        assert json.loads(state, object_hook=_untag) == json.loads(state, object_hook=reference_untag), state


# As the library writes them (compact): the shapes the text rewriting handles, and those it leaves to the hook.
COMPACT = [
    *(json.dumps(json.loads(s), separators=(",", ":")) for s in STATES),
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-22T03:52:33.600000+00:00"},'
    '"deployment_id":{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"},"stage":"prod"}',
    '{"a":[{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"},'
    '{"_type_":"uuid_hex","_data_":"00000000000000000000000000000002"}],'
    '"t":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00"},'
    '"u":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42.000001+00:00"}}',
    # Not rewritten: another offset, upper-case hex, a short id, data inside a string.
    '{"t":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42.5+01:00"}}',
    '{"u":{"_type_":"uuid_hex","_data_":"231B09A37AA6476B9F4C76B13E62DB51"},"v":{"_type_":"uuid_hex","_data_":"ab"}}',
    '{"text":"{\\"_type_\\":\\"uuid_hex\\",\\"_data_\\":\\"231b09a37aa6476b9f4c76b13e62db51\\"}"}',
    '{"text":"quote \\" {\\"_type_\\":\\"datetime_iso\\"}",'
    '"t":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00"}}',
    '{"\u00e9":"\u2713 caf\u00e9","n":{"_type_":"decimal_str","_data_":"1.5"}}',
]


def test_parsing_a_stored_state_gives_what_the_object_hook_gives() -> None:
    for state in COMPACT:
        expected = json.loads(state, object_hook=reference_untag)
        assert parse_state(state.encode()) == expected, state


class Recorder:
    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.rows = [list(row) for row in rows]


class Kind(StrEnum):
    A = "a\x00b"


def test_bulk_copy_escapes_exactly_as_safe_text() -> None:
    rows = [
        ("plain", 1, None, 2.5, "a\x00b", "\x00", "", Kind.A, b"bytes\x00"),
        ("x\x00y\x00", True, "ok", "é✓", 0, None, "no nul", "\\u0000", ["list"]),
    ]
    recorder = Recorder()
    SafeCursor(recorder).copy_rows("t", ["c"] * 9, rows)  # type: ignore[arg-type]
    assert recorder.rows == [[safe_text(v) for v in row] for row in rows]
    assert recorder.rows[0][4] == "a\\u0000b"
    assert recorder.rows[0][7] == "a\\u0000b"


def test_stored_events_without_the_json_escape_of_nul_need_no_check_and_others_do() -> None:
    clean = json.dumps({"description": "no nul", "reason": "\\u0000 as text"}).encode()
    holding = json.dumps({"description": "a\x00b"}).encode()
    assert b"\\u0000" in holding
    assert nul_free([json.dumps({"description": "plain é✓"}).encode()] * 3)
    assert not nul_free([clean])  # an escaped backslash before u0000 is checked too (no harm)
    assert not nul_free([b"{}", holding])
    assert nul_free([])
    # Rows a batch known to be free of NUL go to the copy as they are.
    recorder = Recorder()
    rows = [("plain", 1, None)]
    SafeCursor(recorder, nul_free=True).copy_rows("t", ["c"] * 3, rows)  # type: ignore[arg-type]
    assert recorder.rows == [["plain", 1, None]]


# What the C parser reads differently or not at all, and tags it must leave to the general path.
EDGES = [
    '{"a":NaN,"t":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00"}}',
    '{"n":Infinity}',
    '{"big":123456789012345678901234567890}',
    '{"big":18446744073709551616,"small":-9223372036854775809}',
    '{"edge":18446744073709551615,"low":-9223372036854775808}',
    '{"f":1e400}',
    '{"s":"\\ud800 lone surrogate"}',
    '{"dup":1,"other":2,"dup":3}',
    '{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"}',
    '{"x":{"_type_":"decimal_str","_data_":{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"}}}',
    '{"x":{"_type_":null,"_data_":1},"t":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00"}}',
    '{"x":{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51","more":1}}',
    '{"list":[{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"}],'
    '"u":{"_type_":"uuid_hex","_data_":"00000000000000000000000000000002"}}',
    '{"t":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42.5+01:00"},"v":1.5,"w":-0.0,"z":[1,2.25,"3"]}',
    '{"id":{"_type_":"uuid_hex","_data_":"231B09A37AA6476B9F4C76B13E62DB51"},"n":{"_type_":"decimal_str","_data_":"1.5"}}',
    '[{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"}]',
    '"text"',
    "12",
    # One tag, under "timestamp" (`parse_state`'s shortcut) or not quite there.
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-22T03:52:33.600000+00:00"},"actor":"a","n":[1]}',
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42.5+01:00"},"actor":"a"}',
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00"}}',
    '{"timestamp":{"_data_":"2025-11-01T01:05:42.000001+00:00","_type_":"datetime_iso"}}',
    '{"timestamp":{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"}}',
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00","more":1}}',
    '{"timestamp":{"_type_":"datetime_iso","other":"2025-11-01T01:05:42+00:00"}}',
    '{"timestamp":{"_type_":"datetime_iso"},"d":"x"}',
    '{"timestamp":"plain","t":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00"}}',
    '{"timestamp":{"a":{"_type_":"datetime_iso","_data_":"2025-11-01T01:05:42+00:00"}}}',
]


def test_the_c_parser_and_the_standard_one_give_the_same_values_and_key_order(monkeypatch: Any) -> None:
    from projections import raw

    for state in [*COMPACT, *EDGES]:
        expected = json.loads(state, object_hook=reference_untag)
        fast = parse_state(state.encode())
        with monkeypatch.context() as patched:
            patched.setattr(raw, "orjson", None)
            plain = parse_state(state.encode())
        for got in (fast, plain):
            assert json.dumps(got) == json.dumps(expected), state  # values, types and key order (NaN too)
            assert _types(got) == _types(expected), state


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return [(key, _types(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


def test_a_time_tag_that_holds_no_text_fails_with_either_parser(monkeypatch: Any) -> None:
    from projections import raw

    state = b'{"timestamp":{"_type_":"datetime_iso","_data_":null},"actor":"a"}'
    with pytest.raises(TypeError):
        json.loads(state, object_hook=reference_untag)
    with pytest.raises(TypeError):
        parse_state(state)
    monkeypatch.setattr(raw, "orjson", None)
    with pytest.raises(TypeError):
        parse_state(state)
