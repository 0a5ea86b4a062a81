"""Configurations read model: one row per configuration (lists per service).

Raw: a batch's events for one configuration fold into one row write, which matters for
configurations with thousands of versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.base import Projection
from projections.raw import RawEvent
from projections.store import Cursor

_PREFIX = "stagekeeper:Configuration."
COLUMNS = (
    "id", "service_id", "name", "description", "machines", "networks", "version",
    "created_at", "created_by", "updated_at", "updated_by", "position",
)  # fmt: skip
_MARKS = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "id")
# Rows a statement writes: 12 parameters a row stays under SQLite's oldest limit of 999 a statement.
ROWS = 80


class ConfigurationsProjection(Projection):
    name = "configurations"
    raw = True
    tables = ("sk_configurations",)
    reads = frozenset(("service_id", "name", "description", "machines", "networks", "timestamp", "actor"))
    sized = frozenset(("machines", "networks"))  # counted: most of a revision's state, never read here
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

    def apply_batch(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        mine = [raw for raw in events if raw.topic.startswith(_PREFIX)]
        # The rows this batch changes, read in one query (those it defines are not read).
        defined = {raw.aggregate_id for raw in mine if raw.type == "Configuration.Defined"}
        wanted = sorted({raw.aggregate_id for raw in mine} - defined)
        stored: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"SELECT * FROM sk_configurations WHERE id IN ({marks})", chunk)  # noqa: S608
            stored.update((row["id"], row) for row in cursor.fetchall())
        rows: dict[str, dict[str, Any]] = {}
        for raw in mine:
            key = raw.aggregate_id
            row = rows.get(key)
            if row is None and raw.type != "Configuration.Defined":
                row = stored.get(key)
                if row is None:
                    continue
            data = raw.data
            if raw.type == "Configuration.Defined":
                row = {
                    "id": key, "service_id": data["service_id"], "name": data["name"],
                    "description": data["description"], "machines": len(data["machines"]),
                    "networks": len(data["networks"]), "created_at": data["timestamp"], "created_by": data["actor"],
                }  # fmt: skip
            else:
                assert row is not None
                if raw.type in _FOLDED:
                    _fold(row, raw.type, data)
            row["version"] = raw.version
            row["updated_at"] = data["timestamp"]
            row["updated_by"] = data.get("actor") or ""
            row["position"] = raw.position
            rows[key] = row
        # One statement for up to ROWS rows (one row per configuration: no row conflicts with another
        # of the same statement), not one per row: a round trip and a plan each.
        values = [row[c] for row in rows.values() for c in COLUMNS]
        step = ROWS * len(COLUMNS)
        for start in range(0, len(values), step):
            chunk = values[start : start + step]
            tuples = ", ".join([_MARKS] * (len(chunk) // len(COLUMNS)))
            cursor.execute(
                f"INSERT INTO sk_configurations ({', '.join(COLUMNS)}) VALUES {tuples} "  # noqa: S608
                f"ON CONFLICT (id) DO UPDATE SET {_UPDATES}",
                chunk,
            )


# The events `_fold` changes a row's columns for (the others change only its version and update).
_FOLDED = frozenset(
    f"Configuration.{name}"
    for name in (
        "Revised", "Restored", "Renamed", "MachineAdded", "MachineRemoved", "NetworkAdded", "NetworkRemoved",
    )
)  # fmt: skip


def _fold(row: dict[str, Any], kind: str, data: dict[str, Any]) -> None:
    if kind in ("Configuration.Revised", "Configuration.Restored"):
        row.update(description=data["description"], machines=len(data["machines"]), networks=len(data["networks"]))
        if "name" in data:
            row["name"] = data["name"]
    elif kind == "Configuration.Renamed":
        row["name"] = data["name"]
    elif kind == "Configuration.MachineAdded":
        row["machines"] += 1
    elif kind == "Configuration.MachineRemoved":
        row["machines"] -= 1
    elif kind == "Configuration.NetworkAdded":
        row["networks"] += 1
    elif kind == "Configuration.NetworkRemoved":
        row["networks"] -= 1
