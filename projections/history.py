"""History read model: configuration versions (with a time -> version index).

What each stage held over time (the board at a past time) is in the deployments read model.
"""

from __future__ import annotations

from collections.abc import Sequence

from projections.base import TOPIC_PREFIX, Projection
from projections.raw import RawEvent
from projections.store import Cursor

_CONFIGURATION = "stagekeeper:Configuration."
_TYPE = _CONFIGURATION.removeprefix(TOPIC_PREFIX)  # how the audit log writes the type
COLUMNS = ("configuration_id", "version", "at", "actor", "reason", "event_type", "summary", "position")


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

    # Read by configuration, version and time (audit_queries.py): no statistics of the summary and reason.
    statistics = {"sk_configuration_history": tuple(c for c in COLUMNS if c not in ("summary", "reason"))}

    # Every value of a row is in the audit log's row of the same event (tests/integration/
    # test_projection_catch_up_identical.py compares both ways with an event-by-event application).
    derives_from = "audit"

    def derive(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        if any(_unprefixed(raw.notification.topic) for raw in events):
            # A topic outside the application's (none is stored today): its audit row's type would
            # read like a configuration's.
            self.apply_batch(events, cursor)
            return
        cursor.execute(
            f"INSERT INTO sk_configuration_history ({', '.join(COLUMNS)}) "  # noqa: S608
            "SELECT aggregate_id, aggregate_version, at, actor, reason, event_type, summary, position FROM sk_audit "
            f"WHERE position BETWEEN %s AND %s AND substr(event_type, 1, {len(_TYPE)}) = %s ORDER BY position",
            (events[0].notification.id, events[-1].notification.id, _TYPE),
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
            cursor.copy_rows("sk_configuration_history", COLUMNS, rows)


def _unprefixed(topic: str) -> bool:
    return topic.startswith(_TYPE)
