"""Configurations read model: one row per configuration (lists per service)."""

from __future__ import annotations

from typing import Any

from projections.base import Projection, iso, on
from projections.store import Cursor


class ConfigurationsProjection(Projection):
    name = "configurations"
    tables = ("sk_configurations",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_configurations (
            id TEXT PRIMARY KEY,
            service_id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            machines INTEGER NOT NULL,
            networks INTEGER NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_configurations_service ON sk_configurations (service_id, name)",
    )

    def _update(
        self,
        cursor: Cursor,
        event: Any,
        position: int,
        sets: str = "",
        params: tuple[Any, ...] = (),
    ) -> None:
        cursor.execute(
            "UPDATE sk_configurations SET version = %s, updated_at = %s, updated_by = %s, position = %s"  # noqa: S608
            + sets
            + " WHERE id = %s",
            (
                event.originator_version,
                iso(event.timestamp),
                event.actor,
                position,
                *params,
                str(event.originator_id),
            ),
        )

    @on("Configuration.Defined")
    def defined(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "INSERT INTO sk_configurations (id, service_id, name, description, machines, networks, version, "
            "created_at, created_by, updated_at, updated_by, position) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (
                str(event.originator_id),
                str(event.service_id),
                event.name,
                event.description,
                len(event.machines),
                len(event.networks),
                event.originator_version,
                iso(event.timestamp),
                event.actor,
                iso(event.timestamp),
                event.actor,
                position,
            ),
        )

    @on("Configuration.Revised", "Configuration.Restored")
    def replaced(self, event: Any, position: int, cursor: Cursor) -> None:
        sets = ", description = %s, machines = %s, networks = %s"
        params: tuple[Any, ...] = (event.description, len(event.machines), len(event.networks))
        if hasattr(event, "name"):
            sets += ", name = %s"
            params += (event.name,)
        self._update(cursor, event, position, sets, params)

    @on("Configuration.Renamed")
    def renamed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, ", name = %s", (event.name,))

    @on("Configuration.MachineAdded")
    def machine_added(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, ", machines = machines + 1")

    @on("Configuration.MachineRemoved")
    def machine_removed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, ", machines = machines - 1")

    @on("Configuration.NetworkAdded")
    def network_added(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, ", networks = networks + 1")

    @on("Configuration.NetworkRemoved")
    def network_removed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, ", networks = networks - 1")

    @on("Configuration.MachineChanged")
    def machine_changed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position)
