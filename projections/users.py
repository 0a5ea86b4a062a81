"""Local users read model: who exists, their groups and state, for GET /api/v1/users (no hashes)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import Projection, iso, on
from projections.store import Cursor, ReadStore, Row


class UsersProjection(Projection):
    name = "users"
    tables = ("sk_local_users",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_local_users (
            username TEXT PRIMARY KEY,
            id TEXT NOT NULL,
            display_name TEXT NOT NULL,
            groups_json TEXT NOT NULL,
            disabled INTEGER NOT NULL,
            locked_until TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            position BIGINT NOT NULL
        )""",
    )

    @on("LocalAccount.Opened")
    def opened(self, event: Any, position: int, cursor: Cursor) -> None:
        at = iso(event.timestamp)
        cursor.execute(
            "INSERT INTO sk_local_users (username, id, display_name, groups_json, disabled, created_by, created_at, "
            "changed_at, position) VALUES (%s, %s, '', '[]', 0, %s, %s, %s, %s) ON CONFLICT (username) DO NOTHING",
            (event.username, str(event.originator_id), event.actor, at, at, position),
        )

    def _update(self, cursor: Cursor, event: Any, position: int, assignments: str, values: tuple[Any, ...]) -> None:
        cursor.execute(
            f"UPDATE sk_local_users SET {assignments}, changed_at = %s, position = %s WHERE id = %s",  # noqa: S608
            (*values, iso(event.timestamp), position, str(event.originator_id)),
        )

    @on("LocalAccount.ProfileChanged")
    def profile(self, event: Any, position: int, cursor: Cursor) -> None:
        groups = json.dumps(sorted(event.groups))
        self._update(cursor, event, position, "display_name = %s, groups_json = %s", (event.display_name, groups))

    @on("LocalAccount.LockedOut")
    def locked(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, "locked_until = %s", (iso(event.until),))

    @on("LocalAccount.Unlocked", "LocalAccount.PasswordChanged")
    def unlocked(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, "locked_until = %s", (None,))

    @on("LocalAccount.Disabled")
    def disabled(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, "disabled = %s", (1,))

    @on("LocalAccount.Enabled")
    def enabled(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, "disabled = %s", (0,))


def _row(row: Row) -> dict[str, Any]:
    return {
        "username": row["username"],
        "display_name": row["display_name"],
        "groups": json.loads(str(row["groups_json"])),
        "disabled": bool(row["disabled"]),
        "locked_until": row["locked_until"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "changed_at": row["changed_at"],
    }


def list_users(store: ReadStore, group: str | None = None) -> list[dict[str, Any]]:
    rows = [_row(r) for r in store.query("SELECT * FROM sk_local_users ORDER BY username")]
    return [r for r in rows if group is None or group in r["groups"]]
