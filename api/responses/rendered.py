"""JSON written around stored JSON text: the board's entries are stored as the board serves them
(tests/contract/test_board_pages.py holds them to the `Board` model), so a page of a thousand of
them is sent without parsing, validating and encoding each one again."""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import uuid4

from api.responses.deployments import Board


class RawJSON(str):
    """JSON text, written into a rendered document as it is."""

    __slots__ = ()


def render(value: Any) -> str:
    """`value` as JSON text: dicts, lists and JSON scalars encoded, `RawJSON` pieces (and lists of
    them) written as they are. The document is encoded once, each raw piece standing in as a
    string marked with a fresh random token, which is then replaced by the piece."""
    token = uuid4().hex
    pieces: list[str] = []

    def held(piece: str) -> str:
        pieces.append(piece)
        return f"{token}{len(pieces) - 1}"

    def swapped(part: Any) -> Any:
        if isinstance(part, RawJSON):
            return held(part)
        if isinstance(part, dict):
            return {key: swapped(item) for key, item in part.items()}
        if isinstance(part, list | tuple):
            if part and all(isinstance(item, RawJSON) for item in part):
                return held("[" + ",".join(part) + "]")
            return [swapped(item) for item in part]
        return part

    text = json.dumps(swapped(value))
    return re.sub(f'"{token}([0-9]+)"', lambda found: pieces[int(found.group(1))], text)


def rendered_board(document: dict[str, Any]) -> str:
    """A board page (`Board`) whose stages list `RawJSON` entries, as JSON text: everything but the
    entries goes through the model (checked, defaults filled in), the entries are written as stored."""
    services = document["services"]
    bare = [{**s, "stages": [{**st, "deployments": []} for st in s["stages"]]} for s in services]
    checked = Board.model_validate({**document, "services": bare}).model_dump(mode="json")
    for shown, service in zip(checked["services"], services, strict=True):
        for cell, stage in zip(shown["stages"], service["stages"], strict=True):
            cell["deployments"] = stage["deployments"]
    return render(checked)
