"""Lease read model: each deployment's last activity (for idle reaping) and the version it was read at.

Activity is a lifecycle command, a console opened or a lease change: this projection keeps the
version (and stored time) of each deployment's last one. The lease scheduler reads candidates here
joined with the deployments read model (state, stage, lease), so it never replays the event store,
and acts only when both rows are at the same deployment version.

Idle time is measured with the domain's Clock, like every other lease time: the scheduler notes in
`sk_lease_seen` when (by the Clock) it first saw each activity version. The table is the scheduler's,
not this projection's, so a rebuild of the projection keeps it.
"""

from __future__ import annotations

from typing import Any

from domain.leases import stamp
from projections.base import Projection, from_json, on
from projections.store import Cursor, ReadStore

ACTIVITY = frozenset(
    f"stagekeeper:Deployment.{name}"
    for name in (
        "Requested", "MoveRequested", "UndeployRequested", "RetryRequested", "PowerRequested",
        "DeploymentPowerRequested", "SnapshotRequested", "RevertRequested", "UpgradeRequested", "SwapRequested",
        "SwapOutRequested", "Captured", "LetGoRequested", "Copied", "ConsoleOpened", "LeaseSet", "LeaseExtended",
        "KeepChanged",
    )
)  # fmt: skip


class LeasesProjection(Projection):
    name = "leases"
    tables = ("sk_lease_activity",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_lease_activity (
            deployment_id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            activity_version INTEGER NOT NULL,
            last_activity TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS sk_lease_seen (
            deployment_id TEXT PRIMARY KEY,
            activity_version INTEGER NOT NULL,
            seen_at TEXT NOT NULL
        )""",
    )

    def start_batch(self) -> None:
        self._rows: dict[str, tuple[str, int, int | None, str | None]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.start_batch()

    @on("Deployment.*")
    def changed(self, event: Any, position: int, cursor: Cursor) -> None:
        key = str(event.originator_id)
        topic = getattr(type(event), "TOPIC", "")
        version: int = event.originator_version
        active, at = (version, stamp(event.timestamp)) if topic in ACTIVITY else (None, None)
        kept = self._rows.get(key)
        if active is None and kept is not None:
            active, at = kept[2], kept[3]
        self._rows[key] = (key, version, active, at)

    def flush(self, cursor: Cursor) -> None:
        read = [(version, key) for key, version, active, _ in self._rows.values() if active is None]
        activity = [
            (key, version, active, at) for key, version, active, at in self._rows.values() if active is not None
        ]
        if read:
            cursor.executemany("UPDATE sk_lease_activity SET version = %s WHERE deployment_id = %s", read)
        if activity:
            cursor.executemany(
                "INSERT INTO sk_lease_activity (deployment_id, version, activity_version, last_activity) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (deployment_id) DO UPDATE SET version = excluded.version, "
                "activity_version = excluded.activity_version, last_activity = excluded.last_activity",
                activity,
            )
        self.start_batch()


def lease_candidates(store: ReadStore, service_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Every live deployment with its lease, stage, state, version and last activity (the scheduler's
    and the report's input). `service_ids`: only those services (None: all)."""
    rows = store.query(
        "SELECT d.id, d.service_id, d.stage, d.state, d.version, d.view, a.version AS read_version, "
        "a.activity_version, a.last_activity, s.activity_version AS seen_version, s.seen_at "
        "FROM sk_deployments d LEFT JOIN sk_lease_activity a ON a.deployment_id = d.id "
        "LEFT JOIN sk_lease_seen s ON s.deployment_id = d.id WHERE d.state <> 'undeployed' ORDER BY d.id"
    )
    found: list[dict[str, Any]] = []
    for row in rows:
        if service_ids is not None and row["service_id"] not in service_ids:
            continue
        view = from_json(row["view"])
        found.append(
            {
                "id": row["id"],
                "service_id": row["service_id"],
                "configuration_name": view.get("configuration_name"),
                "stage": row["stage"],
                "state": row["state"],
                "version": int(row["version"]),
                "current": row["read_version"] is not None and int(row["read_version"]) == int(row["version"]),
                "lease": view.get("lease"),
                "activity_version": row["activity_version"],
                # By the Clock when the scheduler saw this activity; else the activity event's own time.
                "last_activity": row["seen_at"]
                if row["seen_version"] is not None and row["seen_version"] == row["activity_version"]
                else row["last_activity"],
                "seen": row["seen_version"] is not None and row["seen_version"] == row["activity_version"],
            }
        )
    return found


def note_seen(store: ReadStore, deployment_id: str, activity_version: int, at: str) -> None:
    """The scheduler saw this activity of the deployment at `at` (by the Clock)."""
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO sk_lease_seen (deployment_id, activity_version, seen_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (deployment_id) DO UPDATE SET activity_version = excluded.activity_version, "
            "seen_at = excluded.seen_at",
            (deployment_id, activity_version, at),
        )
