"""Deployments read model: every deployment's view now (lists, the board, stage inventory) and
at each of its events (the board as of a past time).

The rows are `Deployment.view()` computed from the aggregate at each event's version, so the
aggregate's state machine is the only one: this module knows no transitions. Within a follow,
each deployment's aggregate is kept and the next event applied to it; a deployment met for the
first time (or out of sequence, after a replayed batch) is loaded at that event's version
(from the nearest snapshot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from domain.deployment import Deployment
from projections.base import Projection, on, to_json
from projections.store import Cursor

# Deployments whose aggregate stays in memory between events; beyond it, they are loaded again.
KEPT = 5000


def board_entry(view: dict[str, Any]) -> dict[str, Any]:
    """What the board shows of a deployment, now or at a past time: its view without machines."""
    return {key: value for key, value in view.items() if key != "machines"}


class DeploymentsProjection(Projection):
    name = "deployments"
    # 3: machines carry their placement, the deployment its rebalance; 4: drifted; 5: the board
    # entry next to the view, and the board's index
    schema_version = 5
    tables = ("sk_deployments", "sk_deployment_history")
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_deployments (
            id TEXT PRIMARY KEY,
            service_id TEXT NOT NULL,
            configuration_id TEXT NOT NULL,
            stage TEXT NOT NULL,
            state TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            version INTEGER NOT NULL,
            position BIGINT NOT NULL,
            view TEXT NOT NULL,
            drifted INTEGER NOT NULL DEFAULT 0,
            entry TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_deployments_service_stage ON sk_deployments (service_id, stage)",
        "CREATE INDEX IF NOT EXISTS sk_deployments_state ON sk_deployments (state)",
        "CREATE INDEX IF NOT EXISTS sk_deployments_configuration ON sk_deployments (configuration_id)",
        # Newest first, a page at a time: the keyset cursor of GET /deployments.
        "CREATE INDEX IF NOT EXISTS sk_deployments_requested ON sk_deployments (requested_at, id)",
        # The board: a page of services' live deployments, per stage in board order, read without
        # the undeployed ones (most rows of a long-lived store) and without decoding machines.
        "CREATE INDEX IF NOT EXISTS sk_deployments_board ON sk_deployments (service_id, stage, requested_at, id) "
        "WHERE state <> 'undeployed'",
        # One row per deployment event: the board entry as it was from that moment on.
        """CREATE TABLE IF NOT EXISTS sk_deployment_history (
            deployment_id TEXT NOT NULL,
            position BIGINT NOT NULL,
            at TEXT NOT NULL,
            service_id TEXT NOT NULL,
            state TEXT NOT NULL,
            entry TEXT NOT NULL,
            PRIMARY KEY (deployment_id, position)
        )""",
        "CREATE INDEX IF NOT EXISTS sk_deployment_history_at ON sk_deployment_history (at, deployment_id)",
    )

    def __init__(self, load: Callable[[UUID, int], Deployment]) -> None:
        """`load(id, version)` reads a deployment at a version from the event store."""
        super().__init__()
        self._load = load
        self._kept: dict[UUID, Deployment] = {}
        self.start_batch()

    def _at(self, event: Any) -> Deployment:
        """The deployment as of this event, from the kept aggregate when the event follows it."""
        deployment_id: UUID = event.originator_id
        kept = self._kept.pop(deployment_id, None)
        if kept is not None and kept.version == event.originator_version - 1:
            # If applying fails, the aggregate is not kept: it may be half-changed.
            event.mutate(kept)
            deployment = kept
        elif event.originator_version == 1:
            deployment = event.mutate(None)
        else:
            deployment = self._load(deployment_id, event.originator_version)
        if len(self._kept) >= KEPT:
            self._kept.clear()
        self._kept[deployment_id] = deployment
        return deployment

    def start_batch(self) -> None:
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._history: list[tuple[Any, ...]] = []

    @on("Deployment.*")
    def changed(self, event: Any, position: int, cursor: Cursor) -> None:
        view = self._at(event).view()
        entry = to_json(board_entry(view))
        # Within a batch only each deployment's last view is written; its history gets every one.
        self._rows[view["id"]] = (
            view["id"],
            view["service_id"],
            view["configuration_id"],
            view["stage"],
            view["state"],
            view["requested_at"],
            view["version"],
            position,
            to_json(view),
            1 if view.get("drifted") else 0,
            entry,
        )
        self._history.append((view["id"], position, view["updated_at"], view["service_id"], view["state"], entry))

    def flush(self, cursor: Cursor) -> None:
        if self._rows:
            cursor.executemany(
                "INSERT INTO sk_deployments (id, service_id, configuration_id, stage, state, requested_at, version, "
                "position, view, drifted, entry) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET "
                "stage = excluded.stage, state = excluded.state, version = excluded.version, "
                "position = excluded.position, view = excluded.view, drifted = excluded.drifted, "
                "entry = excluded.entry",
                list(self._rows.values()),
            )
        if self._history:
            cursor.executemany(
                "INSERT INTO sk_deployment_history (deployment_id, position, at, service_id, state, entry) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (deployment_id, position) DO NOTHING",
                self._history,
            )
        self.start_batch()
