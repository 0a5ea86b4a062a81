"""History read model: configuration versions (with a time -> version index).

What each stage held over time (the board at a past time) is in the deployments read model.
"""

from __future__ import annotations

from collections.abc import Sequence

from projections.base import Projection
from projections.raw import RawEvent
from projections.store import Cursor

_CONFIGURATION = "stagekeeper:Configuration."


class ConfigurationHistoryProjection(Projection):
    """Every configuration version with who / when / why; doubles as the as_of index."""

    name = "configuration_history"
    raw = True
    tables = ("sk_configuration_history",)
    reads = frozenset(("timestamp", "actor", "reason"))
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_configuration_history (
            configuration_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            at TEXT NOT NULL,
            actor TEXT,
            reason TEXT,
            event_type TEXT NOT NULL,
            summary TEXT NOT NULL,
            position BIGINT NOT NULL,
            PRIMARY KEY (configuration_id, version)
        )""",
        "CREATE INDEX IF NOT EXISTS sk_configuration_history_at ON sk_configuration_history (configuration_id, at)",
    )

    def apply_batch(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        rows = []
        for raw in events:
            notification = raw.notification
            if not notification.topic.startswith(_CONFIGURATION):
                continue
            rows.append(
                (
                    raw.aggregate_id,
                    notification.originator_version,
                    raw.data["timestamp"],
                    raw.data.get("actor"),
                    raw.data.get("reason"),
                    raw.type,
                    raw.summary,
                    notification.id,
                )
            )
        if rows:
            cursor.copy_rows(
                "sk_configuration_history",
                ("configuration_id", "version", "at", "actor", "reason", "event_type", "summary", "position"),
                rows,
            )
