"""The audit hash chain: each entry's hash covers the stored event and the previous hash."""

from __future__ import annotations

import hashlib

from eventsourcing.persistence import Notification

GENESIS = "0" * 64


def link(previous: str, notification: Notification) -> str:
    return link_fields(
        previous,
        notification.id,
        str(notification.originator_id),
        notification.originator_version,
        notification.topic,
        notification.state,
    )


def link_fields(previous: str, position: int, originator: str, version: int, topic: str, state: bytes) -> str:
    """`link` of the notification with these fields (`originator`: its originator id as text)."""
    digest = hashlib.sha256()
    digest.update(previous.encode())
    digest.update(f"|{position}|{originator}|{version}|{topic}|".encode())
    digest.update(state)
    return digest.hexdigest()
