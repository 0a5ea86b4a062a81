"""Webhooks read model: subscriptions (never their secret), and the delivery log's table.

`sk_webhook_deliveries` is written by the delivery worker (adapters/webhooks.py), not by this
projection: it is created with it but not dropped when this read model is rebuilt (a rebuild
must not forget what was delivered, or receivers would get everything twice).
"""

from __future__ import annotations

import json
from typing import Any

from projections.base import Projection, iso, on
from projections.store import Cursor, ReadStore, Row

DELIVERY_COLUMNS = (
    "webhook_id, event_id, position, kind, event_type, service_id, state, attempts, next_attempt_at, "
    "last_status, last_error, delivered_at, created_at"
)


class WebhooksProjection(Projection):
    name = "webhooks"
    tables = ("sk_webhooks",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_webhooks (
            id TEXT PRIMARY KEY,
            service_id TEXT,
            kinds TEXT NOT NULL,
            url TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            removed INTEGER NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_webhooks_service ON sk_webhooks (service_id)",
        """CREATE TABLE IF NOT EXISTS sk_webhook_deliveries (
            webhook_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            position BIGINT NOT NULL,
            kind TEXT NOT NULL,
            event_type TEXT NOT NULL,
            service_id TEXT,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at TEXT NOT NULL,
            last_status INTEGER,
            last_error TEXT,
            delivered_at TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (webhook_id, event_id)
        )""",
        "CREATE INDEX IF NOT EXISTS sk_webhook_deliveries_due ON sk_webhook_deliveries (state, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS sk_webhook_deliveries_log ON sk_webhook_deliveries (webhook_id, position)",
    )

    @on("Webhook.Subscribed")
    def subscribed(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "INSERT INTO sk_webhooks (id, service_id, kinds, url, created_by, created_at, removed, position) "
            "VALUES (%s, %s, %s, %s, %s, %s, 0, %s) ON CONFLICT (id) DO NOTHING",
            (
                str(event.originator_id), str(event.service_id) if event.service_id else None,
                json.dumps(list(event.kinds)), event.url, event.actor, iso(event.timestamp), position,
            ),
        )  # fmt: skip

    @on("Webhook.Removed")
    def removed(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "UPDATE sk_webhooks SET removed = 1, position = %s WHERE id = %s", (position, str(event.originator_id))
        )


def _webhook(row: Row) -> dict[str, Any]:
    return {**row, "kinds": json.loads(row["kinds"]), "removed": bool(row["removed"])}


def list_webhooks(store: ReadStore, service_ids: set[str] | None, include_global: bool) -> list[dict[str, Any]]:
    """Live subscriptions of these services (all when None), and the global ones when asked."""
    rows = store.query(
        "SELECT id, service_id, kinds, url, created_by, created_at, removed, position FROM sk_webhooks "
        "WHERE removed = 0 ORDER BY created_at, id"
    )
    return [
        _webhook(r)
        for r in rows
        if (r["service_id"] is None and include_global)
        or (r["service_id"] is not None and (service_ids is None or r["service_id"] in service_ids))
    ]


def matching(store: ReadStore, kind: str, service_id: str | None) -> list[dict[str, Any]]:
    """Live subscriptions to `kind` for this service (and the global ones)."""
    rows = store.query(
        "SELECT id, service_id, kinds, url, created_by, created_at, removed, position FROM sk_webhooks "
        "WHERE removed = 0 AND (service_id IS NULL OR service_id = %s)",
        (service_id or "",),
    )
    return [w for w in map(_webhook, rows) if kind in w["kinds"]]


def deliveries(store: ReadStore, webhook_id: str, limit: int, before: int | None) -> list[Row]:
    """The delivery log of one subscription, newest first (`before`: positions older than it)."""
    where, params = ("webhook_id = %s", [webhook_id]) if before is None else (
        "webhook_id = %s AND position < %s", [webhook_id, before])  # fmt: skip
    return store.query(
        f"SELECT {DELIVERY_COLUMNS} FROM sk_webhook_deliveries WHERE {where} "  # noqa: S608
        "ORDER BY position DESC, event_id LIMIT %s",
        (*params, limit),
    )
