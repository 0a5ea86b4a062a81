"""Services read model: one row per service with its ordered stages (for lists and the board)."""

from __future__ import annotations

from typing import Any

from domain.service import with_stage_id
from domain.values import FENCE_KEYS
from projections.base import Projection, from_json, iso, on, to_json
from projections.store import Cursor


class ServicesProjection(Projection):
    name = "services"
    schema_version = 2  # 2: stages carry their id
    tables = ("sk_services",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_services (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL,
            description TEXT NOT NULL,
            stages TEXT NOT NULL,
            retired BOOLEAN NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_services_name ON sk_services (name_key)",
    )

    def __init__(self) -> None:
        super().__init__()
        self.start_batch()

    def start_batch(self) -> None:
        # Per service, the columns its events of this batch changed, each with its last value: written
        # by `flush`, one UPDATE per service and batch (a row's successive UPDATEs set constants, so the
        # last value of each column is the row they leave).
        self._changed: dict[str, dict[str, Any]] = {}
        # Positions of services whose only change in this batch is background work, written by `flush`.
        self._positions: dict[str, int] = {}

    def flush(self, cursor: Cursor) -> None:
        # One statement per set of columns (psycopg sends an executemany's rows in one round trip).
        shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for service_id, columns in self._changed.items():
            shapes.setdefault(tuple(columns), []).append((*columns.values(), service_id))
        for names, rows in shapes.items():
            sets = ", ".join(f"{column} = %s" for column in names)
            cursor.executemany(f"UPDATE sk_services SET {sets} WHERE id = %s", rows)  # noqa: S608
        if self._positions:
            cursor.executemany(
                "UPDATE sk_services SET position = %s WHERE id = %s",
                [(position, service_id) for service_id, position in self._positions.items()],
            )
        self.start_batch()

    def _stages(self, cursor: Cursor, service_id: str) -> list[dict[str, Any]]:
        changed = self._changed.get(service_id)
        if changed is not None and "stages" in changed:
            return list(from_json(changed["stages"]))  # as this batch left them (not yet written)
        cursor.execute("SELECT stages FROM sk_services WHERE id = %s", (service_id,))
        row = cursor.fetchone()
        return list(from_json(row["stages"])) if row else []

    def _touch(self, cursor: Cursor, event: Any, position: int, **columns: Any) -> None:
        service_id = str(event.originator_id)
        # This later position replaces any background one of the batch.
        self._positions.pop(service_id, None)
        changed = self._changed.setdefault(service_id, {})
        changed.update(version=event.originator_version, updated_at=iso(event.timestamp), position=position)
        changed.update(columns)

    @on("Service.Registered")
    def registered(self, event: Any, position: int, cursor: Cursor) -> None:
        if str(event.originator_id) in self._changed:  # changes before it (not in a log: kept in order)
            self.flush(cursor)
        cursor.execute(
            "INSERT INTO sk_services (id, name, name_key, description, stages, retired, version, created_at, "
            "created_by, updated_at, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            (
                str(event.originator_id),
                event.name,
                event.name.casefold(),
                event.description,
                to_json([with_stage_id(event.originator_id, s) for s in event.stages]),
                False,
                event.originator_version,
                iso(event.timestamp),
                event.actor,
                iso(event.timestamp),
                position,
            ),
        )

    @on("Service.DescriptionChanged")
    def description_changed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._touch(cursor, event, position, description=event.description)

    @on("Service.Renamed")
    def renamed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._touch(cursor, event, position, name=event.name, name_key=event.name.casefold())

    @on("Service.StageAdded")
    def stage_added(self, event: Any, position: int, cursor: Cursor) -> None:
        stages = self._stages(cursor, str(event.originator_id))
        stages.insert(event.position, with_stage_id(event.originator_id, event.stage))
        self._touch(cursor, event, position, stages=to_json(stages))

    @on("Service.StageRemoved")
    def stage_removed(self, event: Any, position: int, cursor: Cursor) -> None:
        stages = [s for s in self._stages(cursor, str(event.originator_id)) if s["name"] != event.stage]
        self._touch(cursor, event, position, stages=to_json(stages))

    @on("Service.StageRenamed")
    def stage_renamed(self, event: Any, position: int, cursor: Cursor) -> None:
        stages = self._stages(cursor, str(event.originator_id))
        for stage in stages:
            if stage["name"] == event.stage:
                stage["name"] = event.new_name
        self._touch(cursor, event, position, stages=to_json(stages))

    @on("Service.StagesReordered")
    def stages_reordered(self, event: Any, position: int, cursor: Cursor) -> None:
        by_name = {s["name"]: s for s in self._stages(cursor, str(event.originator_id))}
        self._touch(cursor, event, position, stages=to_json([by_name[n] for n in event.order]))

    @on("Service.StageMapped", "Service.StageRestrictionChanged", "Service.StageIpPoolsChanged")
    def stage_changed(self, event: Any, position: int, cursor: Cursor) -> None:
        stages = self._stages(cursor, str(event.originator_id))
        for stage in stages:
            if stage["name"] == event.stage:
                if hasattr(event, "resource_pool"):
                    stage["resource_pool"] = event.resource_pool
                if hasattr(event, "restricted"):
                    stage["restricted"] = event.restricted
                if hasattr(event, "ip_pools"):
                    stage["ip_pools"] = event.ip_pools
        self._touch(cursor, event, position, stages=to_json(stages))

    @on("Service.StageFencingChanged")
    def stage_fencing_changed(self, event: Any, position: int, cursor: Cursor) -> None:
        stages = self._stages(cursor, str(event.originator_id))
        for stage in stages:
            if stage["name"] == event.stage:
                for key in FENCE_KEYS:
                    stage.pop(key, None)
                stage.update(event.settings)
        self._touch(cursor, event, position, stages=to_json(stages))

    @on("Service.StageVerificationChanged")
    def stage_verification_changed(self, event: Any, position: int, cursor: Cursor) -> None:
        stages = self._stages(cursor, str(event.originator_id))
        for stage in stages:
            if stage["name"] == event.stage:
                stage["verification"] = event.verification
        self._touch(cursor, event, position, stages=to_json(stages))

    @on("Service.Retired")
    def retired(self, event: Any, position: int, cursor: Cursor) -> None:
        self._touch(cursor, event, position, retired=True)

    @on(
        "Service.ResourcePoolCreated",
        "Service.DeploymentAdmitted",
        "Service.DeploymentReleased",
        "Service.ConfigurationRetired",
        "Service.UpgradeAdmitted",
    )
    def background(self, event: Any, position: int, cursor: Cursor) -> None:
        changed = self._changed.get(str(event.originator_id))
        if changed is not None:
            changed["position"] = position  # after a change of this batch: its UPDATE writes it
        else:
            self._positions[str(event.originator_id)] = position

    @on("Service.StageQuotaChanged")
    def stage_quota_changed(self, event: Any, position: int, cursor: Cursor) -> None:
        stages = self._stages(cursor, str(event.originator_id))
        for stage in stages:
            if stage["name"] == event.stage:
                stage.pop("quota", None)
                if event.quota:
                    stage["quota"] = event.quota
        self._touch(cursor, event, position, stages=to_json(stages))
