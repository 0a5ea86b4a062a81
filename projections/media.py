"""Media library read model: the media uploaded and not deleted, for GET /api/v1/media."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from domain.media import MAX_MEDIA
from projections.base import Projection, iso, on
from projections.store import Cursor, ReadStore, Row

COLUMNS = "id, name, datacenter, datastore, path, size, sha256, uploaded_by, uploaded_at, position"


class MediaProjection(Projection):
    name = "media"
    tables = ("sk_media",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_media (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            datacenter TEXT NOT NULL,
            datastore TEXT NOT NULL,
            path TEXT NOT NULL,
            size BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            uploaded_by TEXT NOT NULL,
            uploaded_at TEXT NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_media_name ON sk_media (name)",
    )

    @on("Medium.Uploaded")
    def uploaded(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            f"INSERT INTO sk_media ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "  # noqa: S608
            "ON CONFLICT (id) DO NOTHING",
            (
                str(event.originator_id), event.name, event.datacenter, event.datastore, event.path, event.size,
                event.sha256, event.actor, iso(event.timestamp), position,
            ),
        )  # fmt: skip

    @on("Medium.Deleted")
    def deleted(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute("DELETE FROM sk_media WHERE id = %s", (str(event.originator_id),))


def list_media(store: ReadStore, limit: int = MAX_MEDIA) -> list[Row]:
    """The library, by name."""
    return store.query(f"SELECT {COLUMNS} FROM sk_media ORDER BY name, id LIMIT %s", (limit,))  # noqa: S608


def configuration_ids(store: ReadStore) -> list[UUID]:
    """Every configuration (the media delete rule loads each one's current version)."""
    return [UUID(str(r["id"])) for r in store.query("SELECT id FROM sk_configurations ORDER BY id", ())]


def live_deployment_ids(store: ReadStore, service_id: str | None = None) -> list[UUID]:
    """Deployments not undeployed (of one service, or of all)."""
    where, params = ("AND service_id = %s ", (service_id,)) if service_id is not None else ("", ())
    rows = store.query(
        f"SELECT id FROM sk_deployments WHERE state != %s {where}ORDER BY id",  # noqa: S608
        ("undeployed", *params),
    )
    return [UUID(str(r["id"])) for r in rows]


TAIL_PAGE = 1000


def with_tail(ids: list[UUID], position: int, select: Callable[[int, int], Sequence[Any]]) -> list[UUID]:
    """`ids` (a read model's, as of `position`) with the aggregates created after it: those the
    read model has not reached yet, found in the event store (`select(start, limit)` gives the
    notifications of the creation topic from `start` on). Rules that must see everything use it
    instead of waiting for the read model."""
    found = dict.fromkeys(ids)
    start = position + 1
    while True:
        page = select(start, TAIL_PAGE)
        for notification in page:
            found[notification.originator_id] = None
        if len(page) < TAIL_PAGE:
            return list(found)
        start = page[-1].id + 1
