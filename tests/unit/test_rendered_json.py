"""The board's JSON writer: stored JSON text is written as it is, everything around it encoded."""

from __future__ import annotations

import json

from api.responses.rendered import RawJSON, render


def test_raw_pieces_are_written_verbatim_and_the_rest_encoded() -> None:
    entries = [RawJSON(json.dumps({"id": "d1", "note": 'quote " and \\u00e9'})), RawJSON('{"id": "d2"}')]
    document = {
        "services": [{"name": 'a "b" \u00e9', "stages": [{"deployments": entries, "counts": {"deployed": 2}}]}],
        "empty": [],
        "next": None,
        "position": 7,
        "one": RawJSON('{"x": [1, 2]}'),
    }
    text = render(document)
    assert json.loads(text) == {
        "services": [
            {
                "name": 'a "b" \u00e9',
                "stages": [
                    {
                        "deployments": [{"id": "d1", "note": 'quote " and \\u00e9'}, {"id": "d2"}],
                        "counts": {"deployed": 2},
                    }
                ],
            }
        ],
        "empty": [],
        "next": None,
        "position": 7,
        "one": {"x": [1, 2]},
    }
    assert '{"id": "d2"}' in text  # not re-encoded


def test_text_that_looks_like_a_placeholder_is_left_alone() -> None:
    document = {"name": "0123456789abcdef0123456789abcdef0", "raw": [RawJSON("1")]}
    assert json.loads(render(document)) == {"name": "0123456789abcdef0123456789abcdef0", "raw": [1]}
