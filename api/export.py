"""Audit export formats, streamed chunk by chunk (used by the API and the CLI).

An export that fails after its first byte cannot change its status any more. So that no client
takes a truncated export for a complete one, it ends in two ways at once: the body's last line
is an error record (JSON Lines: `{"error": {...}}`; CSV: a line starting `# ERROR`), and the
exception is raised again, so the server aborts the chunked response without its terminating
chunk (curl exits 18, httpx raises RemoteProtocolError).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from domain.errors import StagekeeperError
from projections.audit_queries import AUDIT_FIELDS

COLUMNS = [c.strip() for c in AUDIT_FIELDS.split(",")]
CHUNK_ROWS = 500
FAILURE_CODE = "export_failed"

log = logging.getLogger("stagekeeper.export")


def jsonl_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """JSON Lines: the first entry on its own (so the query has run before any byte is sent), then
    a few hundred entries per chunk."""
    buffer: list[str] = []
    try:
        for count, row in enumerate(rows, start=1):
            buffer.append(json.dumps(row, separators=(",", ":"), default=str))
            if count == 1 or len(buffer) == CHUNK_ROWS:
                yield ("\n".join(buffer) + "\n").encode()
                buffer.clear()
    except Exception:
        # The entries read before a failure go out before the error record.
        if buffer:
            yield ("\n".join(buffer) + "\n").encode()
        raise
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()


def csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """CSV with a header row; the header and first entry first, then a few hundred entries per chunk."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    try:
        for count, row in enumerate(rows, start=1):
            writer.writerow(row)
            if count == 1 or count % CHUNK_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    except Exception:
        # The entries read before a failure go out before the error record.
        yield buffer.getvalue().encode()
        raise
    yield buffer.getvalue().encode()


def _reason(error: Exception) -> str:
    # Domain errors carry a message meant for users; anything else stays in the server log.
    detail = error.message if isinstance(error, StagekeeperError) else "internal error"
    return f"the export stopped before its end ({detail}); what precedes is incomplete"


def jsonl_failure(error: Exception) -> bytes:
    record = {"error": {"code": FAILURE_CODE, "message": _reason(error), "field": None}}
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def csv_failure(error: Exception) -> bytes:
    return f"# ERROR {FAILURE_CODE}: {_reason(error)}\n".encode()


def started(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Produce the first chunk now, so a failure before any byte is sent is an ordinary error
    answer (status and JSON body); the rest follows lazily."""
    first = next(chunks, None)
    return chain([first], chunks) if first is not None else iter(())


def guarded(chunks: Iterator[bytes], failure: Callable[[Exception], bytes]) -> Iterator[bytes]:
    """Pass chunks through; on failure, end the body with an error record and raise again."""
    try:
        yield from chunks
    except Exception as error:
        log.exception("audit export failed midway")
        yield failure(error)
        raise
