"""The audit hash chain: each entry's hash covers the stored event and the previous hash."""

from __future__ import annotations

import hashlib

from eventsourcing.persistence import Notification

GENESIS = "0" * 64


def link(previous: str, notification: Notification) -> str:
    digest = hashlib.sha256()
    digest.update(previous.encode())
    digest.update(
        f"|{notification.id}|{notification.originator_id}|{notification.originator_version}|{notification.topic}|".encode()
    )
    digest.update(notification.state)
    return digest.hexdigest()
