"""Webhook delivery: a follower of its own (own position, own thread) that POSTs signed notifications.

Two passes per run. `enqueue` reads the events whose topic is a notification kind from its tracking
position on, and writes one delivery row per matching subscription in the same transaction that
moves its position (a replay finds the rows there: no receiver is told twice by us). `send` POSTs
the due rows, each signed with its subscription's secret (HMAC-SHA256, `X-Stagekeeper-Signature`,
with the event id in `X-Stagekeeper-Event` for the receiver's dedupe), and records the outcome: a
failure is tried again after an exponential backoff, up to `max_attempts`, then marked failed.
Commands never wait for any of it: only this thread talks to receivers.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.application import StagekeeperApplication
from domain.errors import NotFoundError
from domain.leases import stamp
from domain.notifications import EVENT_HEADER, KIND_HEADER, SIGNATURE_HEADER, TOPICS, body, kind_of, signature
from domain.ports import Clock
from domain.webhooks import Webhook
from projections.raw import RawEvent
from projections.store import ReadStore, set_tracking, tracking_position
from projections.webhooks import matching

log = logging.getLogger("stagekeeper.webhooks")

TRACKING = "webhooks:delivery"
# The subscription STAGEKEEPER_WEBHOOK_URL makes (every kind, every service): a fixed id for its log.
SETTINGS_WEBHOOK_ID = str(uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/webhooks/settings"))
MAX_ERROR = 500


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout: float = 5.0  # seconds per POST
    max_attempts: int = 8
    first_delay: float = 2.0  # seconds; doubles after each failure
    max_delay: float = 3600.0
    batch: int = 100


class WebhookDelivery:
    name = "webhooks"

    def __init__(
        self,
        app: StagekeeperApplication,
        store: ReadStore,
        clock: Clock,
        global_url: str | None = None,
        global_secret: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.global_url = global_url
        self.global_secret = global_secret or ""
        self.policy = policy or DeliveryPolicy()
        self._secrets: dict[str, str | None] = {}

    def position(self) -> int:
        with self.store.transaction() as cursor:
            return tracking_position(cursor, TRACKING)

    def catch_up(self, until: int | None = None) -> int:
        self.enqueue()
        return self.send()

    # -- enqueue --------------------------------------------------------------------------------
    def enqueue(self) -> int:
        queued = 0
        while True:
            start = self.position()
            head = self.app.head()
            if start >= head:
                return queued
            notifications = self.app.select_notifications(start + 1, self.policy.batch, TOPICS)
            rows: list[tuple[Any, ...]] = []
            last = head
            for notification in notifications:
                rows.extend(self._rows_for(RawEvent.parse(notification)))
                last = notification.id
            with self.store.transaction() as cursor:
                if rows:
                    cursor.executemany(
                        "INSERT INTO sk_webhook_deliveries (webhook_id, event_id, position, kind, event_type, "
                        "service_id, url, body, state, attempts, next_attempt_at, created_at) VALUES (%s, %s, %s, %s, "
                        "%s, %s, %s, %s, 'pending', 0, %s, %s) ON CONFLICT (webhook_id, event_id) DO NOTHING",
                        rows,
                    )
                set_tracking(cursor, TRACKING, last if notifications else head)
            queued += len(rows)
            if not notifications:
                return queued

    def _rows_for(self, event: RawEvent) -> list[tuple[Any, ...]]:
        topic = event.notification.topic
        kind = kind_of(topic)
        if kind is None:
            return []
        originator = str(event.notification.originator_id)
        service_id = event.data.get("service_id") or self.app.service_of(UUID(originator))
        service = str(service_id) if service_id else None
        event_id = str(uuid5(UUID(originator), str(event.notification.originator_version)))
        at = str(event.data.get("timestamp") or stamp(self.clock.now()))
        subject = {"aggregate_id": originator, "service_id": service}
        if topic.startswith("stagekeeper:Deployment."):
            subject["deployment_id"] = originator
        data = {k: v for k, v in event.data.items() if k not in ("originator_id", "originator_version", "timestamp")}
        payload = body(event_id, kind, topic, at, {**subject, "summary": event.summary}, data).decode()
        now = stamp(self.clock.now())
        targets = [(w["id"], w["url"]) for w in matching(self.store, kind, service)]
        if self.global_url:
            targets.append((SETTINGS_WEBHOOK_ID, self.global_url))
        return [
            (webhook_id, event_id, event.notification.id, kind, event.type, service, url, payload, now, now)
            for webhook_id, url in targets
        ]

    # -- send -----------------------------------------------------------------------------------
    def send(self) -> int:
        now = self.clock.now()
        due = self.store.query(
            "SELECT webhook_id, event_id, kind, url, body, attempts FROM sk_webhook_deliveries "
            "WHERE state = 'pending' AND next_attempt_at <= %s ORDER BY next_attempt_at, position LIMIT %s",
            (stamp(now), self.policy.batch),
        )
        sent = 0
        for row in due:
            secret = self._secret(row["webhook_id"])
            if secret is None:
                self._finish(row, "cancelled", None, "the subscription was removed")
                continue
            status, error = self._post(row["url"], row["body"].encode(), secret, row["event_id"], row["kind"])
            if status is not None and 200 <= status < 300:
                self._finish(row, "delivered", status, None)
                sent += 1
            else:
                self._retry_later(row, status, error or f"HTTP {status}")
        return sent

    def _post(self, url: str, payload: bytes, secret: str, event_id: str, kind: str) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 (http/https only: domain/webhooks.check_url)
            url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Stagekeeper-Webhook/1",
                SIGNATURE_HEADER: signature(secret, payload),
                EVENT_HEADER: event_id,
                KIND_HEADER: kind,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.policy.timeout) as response:  # noqa: S310
                return int(response.status), None
        except urllib.error.HTTPError as error:
            return int(error.code), f"HTTP {error.code} {error.reason}"
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            return None, f"{type(error).__name__}: {reason}"[:MAX_ERROR]

    def _secret(self, webhook_id: str) -> str | None:
        if webhook_id == SETTINGS_WEBHOOK_ID:
            return self.global_secret if self.global_url else None
        if webhook_id not in self._secrets:
            try:
                webhook = self.app.load(Webhook, UUID(webhook_id), "webhook")
            except NotFoundError:
                return None
            if webhook.removed:
                return None
            self._secrets[webhook_id] = webhook.secret
        return self._secrets[webhook_id]

    def forget(self, webhook_id: str) -> None:
        self._secrets.pop(webhook_id, None)

    def _finish(self, row: dict[str, Any], state: str, status: int | None, error: str | None) -> None:
        with self.store.transaction() as cursor:
            cursor.execute(
                "UPDATE sk_webhook_deliveries SET state = %s, attempts = attempts + 1, last_status = %s, "
                "last_error = %s, delivered_at = %s WHERE webhook_id = %s AND event_id = %s",
                (
                    state, status, error, stamp(self.clock.now()) if state == "delivered" else None,
                    row["webhook_id"], row["event_id"],
                ),
            )  # fmt: skip

    def _retry_later(self, row: dict[str, Any], status: int | None, error: str) -> None:
        attempts = int(row["attempts"]) + 1
        state = "failed" if attempts >= self.policy.max_attempts else "pending"
        delay = min(self.policy.first_delay * 2 ** (attempts - 1), self.policy.max_delay)
        after: datetime = self.clock.now() + timedelta(seconds=delay)
        log.info("webhook %s delivery of %s failed (%s): %s", row["webhook_id"], row["event_id"], error, state)
        with self.store.transaction() as cursor:
            cursor.execute(
                "UPDATE sk_webhook_deliveries SET state = %s, attempts = %s, next_attempt_at = %s, last_status = %s, "
                "last_error = %s WHERE webhook_id = %s AND event_id = %s",
                (state, attempts, stamp(after), status, error[:MAX_ERROR], row["webhook_id"], row["event_id"]),
            )
