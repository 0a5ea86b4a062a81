"""The audit log: one row per stored event, with who, why, where, a summary, and a hash chain.

It reads raw stored events (no domain classes), so it keeps up with large histories, and it
never drops an event: unknown event types still get a row and a link in the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.base import Projection
from projections.chain import GENESIS, link
from projections.raw import RawEvent
from projections.store import Cursor

COLUMNS = (
    "position",
    "at",
    "actor",
    "reason",
    "service_id",
    "stage",
    "from_stage",
    "configuration_id",
    "deployment_id",
    "aggregate_id",
    "aggregate_version",
    "event_type",
    "summary",
    "hash",
)


class AuditProjection(Projection):
    name = "audit"
    raw = True
    tables = ("sk_audit", "sk_audit_subjects")
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_audit (
            position BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT,
            reason TEXT,
            service_id TEXT,
            stage TEXT,
            from_stage TEXT,
            configuration_id TEXT,
            deployment_id TEXT,
            aggregate_id TEXT NOT NULL,
            aggregate_version INTEGER NOT NULL,
            event_type TEXT NOT NULL,
            summary TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_audit_service ON sk_audit (service_id, position)",
        "CREATE INDEX IF NOT EXISTS sk_audit_service_at ON sk_audit (service_id, at)",
        "CREATE INDEX IF NOT EXISTS sk_audit_actor ON sk_audit (actor, position)",
        "CREATE INDEX IF NOT EXISTS sk_audit_configuration ON sk_audit (configuration_id, position)",
        "CREATE INDEX IF NOT EXISTS sk_audit_deployment ON sk_audit (deployment_id, position)",
        "CREATE INDEX IF NOT EXISTS sk_audit_type ON sk_audit (event_type, position)",
        "CREATE INDEX IF NOT EXISTS sk_audit_at ON sk_audit (at)",
        "CREATE INDEX IF NOT EXISTS sk_audit_aggregate ON sk_audit (aggregate_id, aggregate_version)",
        # Which service / configuration / stage each aggregate belongs to, for filtering.
        """CREATE TABLE IF NOT EXISTS sk_audit_subjects (
            aggregate_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            service_id TEXT,
            configuration_id TEXT,
            stage TEXT
        )""",
    )

    def __init__(self) -> None:
        super().__init__()
        # Subjects of services, configurations and subject-less aggregates never change, so they
        # are remembered across batches; a deployment's stage changes and is re-read per batch.
        self._stable: dict[str, dict[str, Any] | None] = {}

    def apply_batch(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        cursor.execute("SELECT hash FROM sk_audit ORDER BY position DESC LIMIT 1")
        row = cursor.fetchone()
        previous = row["hash"] if row else GENESIS
        subjects: dict[str, dict[str, Any] | None] = {}
        rows: list[tuple[Any, ...]] = []
        for raw in events:
            notification, kind, data = raw.notification, raw.type, raw.data
            aggregate_id = str(notification.originator_id)
            subject = self._subject(cursor, subjects, kind, aggregate_id, data)
            previous = link(previous, notification)
            rows.append(
                (
                    notification.id,
                    data.get("timestamp"),
                    data.get("actor"),
                    data.get("reason"),
                    subject.get("service_id") if subject else None,
                    self._stage(kind, data, subject),
                    data.get("from_stage") if kind.startswith("Deployment.Move") else None,
                    subject.get("configuration_id") if subject else None,
                    aggregate_id if kind.startswith("Deployment.") else data.get("deployment_id"),
                    aggregate_id,
                    notification.originator_version,
                    kind,
                    raw.summary,
                    previous,
                )
            )
        cursor.copy_rows("sk_audit", COLUMNS, rows)

    def _subject(
        self,
        cursor: Cursor,
        cache: dict[str, dict[str, Any] | None],
        kind: str,
        aggregate_id: str,
        data: dict[str, Any],
    ) -> dict[str, Any] | None:
        new: dict[str, Any] | None = None
        if kind == "Service.Registered":
            new = {"kind": "service", "service_id": aggregate_id, "configuration_id": None, "stage": None}
        elif kind == "Configuration.Defined":
            new = {
                "kind": "configuration",
                "service_id": data["service_id"],
                "configuration_id": aggregate_id,
                "stage": None,
            }
        elif kind == "Deployment.Requested":
            new = {
                "kind": "deployment",
                "service_id": data["service_id"],
                "configuration_id": data["configuration_id"],
                "stage": data["stage"],
            }
        elif kind == "Refusal.Recorded":
            return {"service_id": data.get("service_id"), "configuration_id": None, "stage": None}
        if new is not None:
            if new["kind"] != "deployment":
                self._remember(aggregate_id, new)
            cursor.execute(
                "INSERT INTO sk_audit_subjects (aggregate_id, kind, service_id, configuration_id, stage) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (aggregate_id) DO NOTHING",
                (aggregate_id, new["kind"], new["service_id"], new["configuration_id"], new["stage"]),
            )
            cache[aggregate_id] = new
            return new
        if aggregate_id in self._stable:
            return self._stable[aggregate_id]
        if aggregate_id not in cache:
            cursor.execute("SELECT * FROM sk_audit_subjects WHERE aggregate_id = %s", (aggregate_id,))
            found = cursor.fetchone()
            cache[aggregate_id] = found
            if found is None or found["kind"] != "deployment":
                self._remember(aggregate_id, found)
        subject = cache[aggregate_id]
        if subject is not None and kind in ("Deployment.Moved", "Deployment.StageRenamed"):
            stage = data["to_stage"] if kind == "Deployment.Moved" else data["new"]
            cursor.execute("UPDATE sk_audit_subjects SET stage = %s WHERE aggregate_id = %s", (stage, aggregate_id))
            subject = cache[aggregate_id] = {**subject, "stage": stage}
        return subject

    def _remember(self, aggregate_id: str, subject: dict[str, Any] | None) -> None:
        if len(self._stable) > 200_000:
            self._stable.clear()
        self._stable[aggregate_id] = subject

    @staticmethod
    def _stage(kind: str, data: dict[str, Any], subject: dict[str, Any] | None) -> str | None:
        if kind.startswith("Service."):
            stage = data.get("stage")
            return stage.get("name") if isinstance(stage, dict) else stage
        if kind in ("Deployment.MoveRequested", "Deployment.Moved"):
            return str(data["to_stage"])
        return subject.get("stage") if subject else None
