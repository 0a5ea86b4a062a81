"""A service as one portable file: the service, its configurations with their whole history, grants
and stage policies, as the events that made them, chained by SHA-256.

Each record is {aggregate, originator_id, originator_version, topic, state} (the event's stored state
as JSON, as the event store keeps it); record i's hash is SHA-256(hash of record i-1 + the record's
canonical JSON), starting from SHA-256 of the format name. The last hash is the file's signature:
changing, removing, reordering or inserting any record breaks it, and `verify` names the first record
that does not match. Deployments, tokens and local accounts are not in it (deployments live in their
vCenter; credentials never leave an instance)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

from domain.errors import ValidationError

FORMAT = "stagekeeper-service-export/1"
GENESIS = hashlib.sha256(FORMAT.encode()).hexdigest()
MAX_RECORDS = 1_000_000
KINDS = ("service", "configuration")


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain(records: Iterable[dict[str, Any]]) -> list[str]:
    """The hash after each record."""
    hashes: list[str] = []
    previous = GENESIS
    for record in records:
        body = {k: v for k, v in record.items() if k != "hash"}
        previous = hashlib.sha256(previous.encode() + canonical(body)).hexdigest()
        hashes.append(previous)
    return hashes


def bundle(records: Sequence[dict[str, Any]], service: dict[str, Any], exported_by: str, at: str) -> dict[str, Any]:
    hashes = chain(records)
    return {
        "format": FORMAT,
        "exported_at": at,
        "exported_by": exported_by,
        "service": service,
        "records": [{**r, "hash": h} for r, h in zip(records, hashes, strict=True)],
        "chain": {"algorithm": "sha256", "count": len(records), "head": hashes[-1] if hashes else GENESIS},
    }


def verify(document: object) -> list[dict[str, Any]]:
    """The records of a well-formed file whose chain verifies; ValidationError naming what is wrong."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValidationError(f"not a Stagekeeper service export (format must be {FORMAT!r})", field="format")
    records = document.get("records")
    head = document.get("chain")
    if not isinstance(records, list) or not records or len(records) > MAX_RECORDS:
        raise ValidationError(f"records must be a list of 1 to {MAX_RECORDS} events", field="records")
    if not isinstance(head, dict):
        raise ValidationError("chain is missing", field="chain")
    for index, record in enumerate(records):
        if not isinstance(record, dict) or set(record) != {
            "aggregate", "originator_id", "originator_version", "topic", "state", "hash"
        }:  # fmt: skip
            raise ValidationError(f"records[{index}] is not an event record", field=f"records[{index}]")
        if record["aggregate"] not in KINDS or not isinstance(record["state"], dict):
            raise ValidationError(f"records[{index}] is not an event record", field=f"records[{index}]")
    for index, expected in enumerate(chain(records)):
        if records[index]["hash"] != expected:
            raise ValidationError(
                f"the hash chain does not verify at records[{index}] ({records[index]['topic']}): the file was "
                "altered, or records were removed, inserted or reordered",
                field=f"records[{index}]",
            )
    if head.get("count") != len(records) or head.get("head") != records[-1]["hash"]:
        raise ValidationError("the chain's head does not match its records (the file was cut short)", field="chain")
    return records


def seal(key: bytes, count: int, head: str) -> str:
    """HMAC-SHA256 of the chain's head under an instance key: unlike the chain, it says who wrote the
    file (an instance holding the key, STAGEKEEPER_EXPORT_KEY)."""
    return hmac.new(key, f"{FORMAT}\x00{count}\x00{head}".encode(), hashlib.sha256).hexdigest()


def check_seal(document: dict[str, Any], key: bytes) -> None:
    """A verified file (`verify`) must carry the seal of `key`; ValidationError naming chain.hmac."""
    head = document["chain"]
    given = head.get("hmac")
    if not isinstance(given, str) or not hmac.compare_digest(given, seal(key, head["count"], head["head"])):
        raise ValidationError(
            "chain.hmac is missing or not made with this instance's export key (STAGEKEEPER_EXPORT_KEY): "
            "only files exported by an instance holding the key are imported",
            field="chain.hmac",
        )
