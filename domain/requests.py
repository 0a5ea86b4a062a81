"""Idempotent requests: what one caller's Idempotency-Key was first used for, and its answer.

The record's id is a uuid5 of (caller, key), and it is saved in the same atomic write as the
command's own events (StagekeeperApplication.commit), so a key can never take effect twice:
a second write of version 1 of the same record fails. The answer (status, headers, body) is
added once the response is known, so repeating the request gives the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import StagekeeperError, ValidationError

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/idempotency-keys")
KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HEADER = "Idempotency-Key"


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            f"{HEADER} must be 1 to 128 characters among letters, digits and . _ : - (e.g. a UUID)", field=HEADER
        )
    return key


class DuplicateRequestError(StagekeeperError):
    """Another request with the same Idempotency-Key saved its effect first."""

    code = "duplicate_request"


class RequestRecord(Aggregate):
    """One caller's use of one Idempotency-Key: the request's fingerprint, later its answer."""

    TOPIC = "stagekeeper:RequestRecord"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:RequestRecord.Created"

    @staticmethod
    def create_id(actor: str, key: str, fingerprint: str) -> UUID:
        return RequestRecord.id_for(actor, key)

    @staticmethod
    def id_for(actor: str, key: str) -> UUID:
        return uuid5(_NAMESPACE, f"{actor}\x00{key}")

    @event("Received", topic="stagekeeper:RequestRecord.Received")
    def __init__(self, actor: str, key: str, fingerprint: str) -> None:
        self.actor = actor
        self.key = key
        self.fingerprint = fingerprint
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = ""

    @event("Answered", topic="stagekeeper:RequestRecord.Answered")
    def answer(self, status: int, headers: dict[str, str], body: str) -> None:
        self.status = status
        self.headers = dict(headers)
        self.body = body

    @property
    def answered(self) -> bool:
        return self.status is not None


@dataclass
class PendingRequest:
    """The request being served in this context: its record goes into the first write it makes."""

    actor: str
    key: str
    fingerprint: str
    saved: bool = False
    duplicate: bool = False

    def record(self) -> RequestRecord:
        return RequestRecord(actor=self.actor, key=self.key, fingerprint=self.fingerprint)
