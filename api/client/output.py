"""How client commands print: `--output json` (the server's JSON, for scripts) or rich tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def emit_json(console: Console, value: Any) -> None:
    # Plain print: rich must not wrap or colour what a script parses.
    console.file.write(json.dumps(value, indent=2, default=str) + "\n")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def table(console: Console, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    if not rows:
        console.print(f"(no {title or 'rows'})")
        return
    out = Table(title=title, show_lines=False, highlight=False)
    for column in columns:
        out.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        out.add_row(*(cell(row.get(column)) for column in columns))
    console.print(out)


def fields(console: Console, value: dict[str, Any], keys: Sequence[str]) -> None:
    width = max(len(k) for k in keys)
    for key in keys:
        if key in value:
            console.print(f"{key.replace('_', ' '):<{width}}  {cell(value[key])}", highlight=False, soft_wrap=True)
