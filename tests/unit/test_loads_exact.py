"""`loads_exact` (read models' JSON: the board's entries) gives what `json.loads` gives, in C where it can."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from projections.base import from_json, to_json
from projections.raw import loads_exact

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_the_same_values_as_the_standard_parser(value: Any) -> None:
    text = json.dumps(value)
    parsed = loads_exact(text)
    assert parsed == json.loads(text)
    assert json.dumps(parsed) == text  # (ints stay ints, floats floats)
    assert from_json(to_json(value)) == json.loads(to_json(value))


def test_what_only_the_standard_parser_reads() -> None:
    assert loads_exact("12345678901234567890123") == 12345678901234567890123  # not a float
    assert loads_exact(b"[-9223372036854775809]") == [-9223372036854775809]
    assert math.isnan(loads_exact('{"x": NaN}')["x"])
    assert loads_exact('"\\ud800"') == "\ud800"  # a lone surrogate
    assert loads_exact('"a\\u0000b"') == "a\x00b"
    assert from_json("") is None
    assert from_json(None) is None
