"""History read models: configuration versions (with a time -> version index) and what each
stage held over time (for the board at a past time)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.base import Projection
from projections.raw import RawEvent
from projections.store import Cursor

_CONFIGURATION = "stagekeeper:Configuration."
_DEPLOYMENT = "stagekeeper:Deployment."

# Deployment events that change its state, and the state they lead to.
_STATES = {
    "Deployment.Requested": "requested",
    "Deployment.ProvisioningStarted": "provisioning",
    "Deployment.Deployed": "deployed",
    "Deployment.ProvisioningFailed": "failed",
    "Deployment.RetryRequested": "requested",
    "Deployment.Moved": "deployed",
    "Deployment.UndeployRequested": "undeploying",
    "Deployment.Undeployed": "undeployed",
}


class ConfigurationHistoryProjection(Projection):
    """Every configuration version with who / when / why; doubles as the as_of index."""

    name = "configuration_history"
    raw = True
    tables = ("sk_configuration_history",)
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
                    str(notification.originator_id),
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


class StageHistoryProjection(Projection):
    """Intervals during which a deployment was in a stage, and its state changes."""

    name = "stage_history"
    raw = True
    tables = ("sk_stage_intervals", "sk_deployment_states")
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_stage_intervals (
            deployment_id TEXT NOT NULL,
            service_id TEXT NOT NULL,
            stage TEXT NOT NULL,
            configuration_id TEXT NOT NULL,
            configuration_name TEXT NOT NULL,
            configuration_version INTEGER NOT NULL,
            entered_at TEXT NOT NULL,
            left_at TEXT,
            position BIGINT NOT NULL,
            PRIMARY KEY (deployment_id, position)
        )""",
        "CREATE INDEX IF NOT EXISTS sk_stage_intervals_service ON sk_stage_intervals (service_id, entered_at)",
        """CREATE TABLE IF NOT EXISTS sk_deployment_states (
            deployment_id TEXT NOT NULL,
            at TEXT NOT NULL,
            state TEXT NOT NULL,
            position BIGINT NOT NULL,
            PRIMARY KEY (deployment_id, position)
        )""",
    )

    def apply_batch(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        for raw in events:
            notification, kind, data = raw.notification, raw.type, raw.data
            if kind not in _STATES and kind != "Deployment.StageRenamed":
                continue
            deployment_id = str(notification.originator_id)
            at = data["timestamp"]
            if kind in _STATES:
                cursor.execute(
                    "INSERT INTO sk_deployment_states (deployment_id, at, state, position) VALUES (%s, %s, %s, %s)",
                    (deployment_id, at, _STATES[kind], notification.id),
                )
            if kind == "Deployment.Requested":
                self._enter(cursor, deployment_id, data, data["stage"], at, notification.id)
            elif kind in ("Deployment.Moved", "Deployment.StageRenamed"):
                current = self._leave(cursor, deployment_id, at)
                if current is not None:
                    stage = data["to_stage"] if kind == "Deployment.Moved" else data["new"]
                    self._enter(cursor, deployment_id, current, stage, at, notification.id)
            elif kind == "Deployment.Undeployed":
                self._leave(cursor, deployment_id, at)

    @staticmethod
    def _enter(cursor: Cursor, deployment_id: str, source: dict[str, Any], stage: str, at: str, position: int) -> None:
        cursor.execute(
            "INSERT INTO sk_stage_intervals (deployment_id, service_id, stage, configuration_id, configuration_name, "
            "configuration_version, entered_at, left_at, position) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, %s)",
            (
                deployment_id,
                source["service_id"],
                stage,
                source["configuration_id"],
                source["configuration_name"],
                source["configuration_version"],
                at,
                position,
            ),
        )

    @staticmethod
    def _leave(cursor: Cursor, deployment_id: str, at: str) -> dict[str, Any] | None:
        cursor.execute(
            "SELECT * FROM sk_stage_intervals WHERE deployment_id = %s AND left_at IS NULL", (deployment_id,)
        )
        current = cursor.fetchone()
        if current is not None:
            cursor.execute(
                "UPDATE sk_stage_intervals SET left_at = %s WHERE deployment_id = %s AND position = %s",
                (at, deployment_id, current["position"]),
            )
        return current
