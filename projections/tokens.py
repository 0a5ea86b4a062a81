"""API tokens read model: whose tokens exist, for GET /api/v1/tokens (never a secret or digest)."""

from __future__ import annotations

from typing import Any

from projections.base import Projection, iso, on
from projections.store import Cursor, ReadStore, Row


class TokensProjection(Projection):
    name = "tokens"
    tables = ("sk_tokens",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_tokens (
            id TEXT PRIMARY KEY,
            user_key TEXT NOT NULL,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            hint TEXT NOT NULL,
            issued_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by TEXT,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_tokens_user ON sk_tokens (user_key, created_at)",
    )

    @on("ApiToken.Issued")
    def issued(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "INSERT INTO sk_tokens (id, user_key, owner, name, hint, issued_by, created_at, expires_at, position) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (
                str(event.originator_id), event.user.casefold(), event.user, event.name, event.digest[:8],
                event.actor, iso(event.timestamp), iso(event.expires_at), position,
            ),
        )  # fmt: skip

    @on("ApiToken.Revoked")
    def revoked(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "UPDATE sk_tokens SET revoked_at = %s, revoked_by = %s, position = %s WHERE id = %s",
            (iso(event.timestamp), event.actor, position, str(event.originator_id)),
        )


def list_tokens(store: ReadStore, user: str | None) -> list[Row]:
    """Tokens of `user` (every user's when None), newest first."""
    where, params = ("WHERE user_key = %s ", (user.casefold(),)) if user is not None else ("", ())
    columns = "id, owner, name, hint, issued_by, created_at, expires_at, revoked_at, revoked_by, position"
    rows = store.query(f"SELECT {columns} FROM sk_tokens {where}ORDER BY created_at DESC, id DESC", params)  # noqa: S608
    return [{**{k: v for k, v in row.items() if k != "owner"}, "user": row["owner"]} for row in rows]
