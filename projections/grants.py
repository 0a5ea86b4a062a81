"""Grants read model: who holds which role on which service (for filtering reads and /me)."""

from __future__ import annotations

from typing import Any

from domain.values import normalise_key
from projections.base import Projection, on
from projections.store import Cursor


class GrantsProjection(Projection):
    name = "grants"
    # 2: members are stored as normalise_key (NFC + case-fold), the key domain/permissions.py compares.
    schema_version = 2
    tables = ("sk_grants",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_grants (
            id TEXT PRIMARY KEY,
            service_id TEXT NOT NULL,
            role TEXT NOT NULL,
            member_user TEXT,
            member_group TEXT,
            stage TEXT,
            granted_by TEXT NOT NULL,
            granted_at TEXT NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_grants_user ON sk_grants (member_user)",
        "CREATE INDEX IF NOT EXISTS sk_grants_group ON sk_grants (member_group)",
        "CREATE INDEX IF NOT EXISTS sk_grants_service ON sk_grants (service_id)",
    )

    @on("Service.Granted")
    def granted(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "INSERT INTO sk_grants (id, service_id, role, member_user, member_group, stage, granted_by, granted_at, "
            "position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (
                str(event.grant_id), str(event.originator_id), event.role,
                normalise_key(event.user) if event.user else None, normalise_key(event.group) if event.group else None,
                event.stage, event.actor, event.timestamp.isoformat(), position,
            ),
        )  # fmt: skip

    @on("Service.GrantRevoked")
    def revoked(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute("DELETE FROM sk_grants WHERE id = %s", (str(event.grant_id),))

    @on("Service.StageRenamed")
    def stage_renamed(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "UPDATE sk_grants SET stage = %s WHERE service_id = %s AND stage = %s",
            (event.new_name, str(event.originator_id), event.stage),
        )

    @on("Service.StageRemoved")
    def stage_removed(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "DELETE FROM sk_grants WHERE service_id = %s AND stage = %s", (str(event.originator_id), event.stage)
        )

    @on("Service.Retired")
    def retired(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute("DELETE FROM sk_grants WHERE service_id = %s", (str(event.originator_id),))
