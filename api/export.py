"""Audit export formats, streamed chunk by chunk (used by the API and the CLI)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from projections.audit_queries import AUDIT_FIELDS

COLUMNS = [c.strip() for c in AUDIT_FIELDS.split(",")]


def jsonl_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """JSON Lines, a few hundred entries per chunk."""
    buffer: list[str] = []
    for row in rows:
        buffer.append(json.dumps(row, separators=(",", ":"), default=str))
        if len(buffer) == 500:
            yield ("\n".join(buffer) + "\n").encode()
            buffer.clear()
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()


def csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """CSV with a header row, a few hundred entries per chunk."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
