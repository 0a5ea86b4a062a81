"""Deployments read model: state, stage and machines of every deployment (lists, board)."""

from __future__ import annotations

from typing import Any

from domain import deployment as states
from projections.base import Projection, from_json, iso, on, to_json
from projections.store import Cursor


class DeploymentsProjection(Projection):
    name = "deployments"
    tables = ("sk_deployments",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_deployments (
            id TEXT PRIMARY KEY,
            service_id TEXT NOT NULL,
            configuration_id TEXT NOT NULL,
            configuration_name TEXT NOT NULL,
            configuration_version INTEGER NOT NULL,
            stage TEXT NOT NULL,
            resource_pool TEXT NOT NULL,
            target_stage TEXT,
            target_pool TEXT,
            state TEXT NOT NULL,
            failure TEXT,
            machines TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sk_deployments_service_stage ON sk_deployments (service_id, stage)",
        "CREATE INDEX IF NOT EXISTS sk_deployments_state ON sk_deployments (state)",
        "CREATE INDEX IF NOT EXISTS sk_deployments_configuration ON sk_deployments (configuration_id)",
    )

    def _update(self, cursor: Cursor, event: Any, position: int, **columns: Any) -> None:
        sets = "".join(f", {column} = %s" for column in columns)
        cursor.execute(
            f"UPDATE sk_deployments SET version = %s, updated_at = %s, position = %s{sets} WHERE id = %s",  # noqa: S608
            (
                event.originator_version,
                iso(event.timestamp),
                position,
                *columns.values(),
                str(event.originator_id),
            ),
        )

    def _machines(self, cursor: Cursor, deployment_id: str) -> list[dict[str, Any]]:
        cursor.execute("SELECT machines FROM sk_deployments WHERE id = %s", (deployment_id,))
        row = cursor.fetchone()
        return list(from_json(row["machines"])) if row else []

    def _set_machine(self, cursor: Cursor, event: Any, position: int, name: str, **fields: Any) -> None:
        machines = self._machines(cursor, str(event.originator_id))
        for machine in machines:
            if machine["name"] == name:
                machine.update(fields)
        self._update(cursor, event, position, machines=to_json(machines))

    @on("Deployment.Requested")
    def requested(self, event: Any, position: int, cursor: Cursor) -> None:
        machines = [
            {
                "name": m["name"],
                "template": m["template"],
                "cpus": m["cpus"],
                "memory_mib": m["memory_mib"],
                "os": m["customization"]["os"],
                "clone_mode": m["clone_mode"],
                "state": "pending",
                "vm_name": None,
                "ip": None,
                "mac": None,
                "resource_pool": None,
            }
            for m in event.machines
        ]
        cursor.execute(
            "INSERT INTO sk_deployments (id, service_id, configuration_id, configuration_name, "
            "configuration_version, stage, resource_pool, state, machines, requested_by, requested_at, "
            "updated_at, version, position) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            (
                str(event.originator_id),
                str(event.service_id),
                str(event.configuration_id),
                event.configuration_name,
                event.configuration_version,
                event.stage,
                event.resource_pool,
                states.REQUESTED,
                to_json(machines),
                event.actor,
                iso(event.timestamp),
                iso(event.timestamp),
                event.originator_version,
                position,
            ),
        )

    @on("Deployment.AddressesAssigned")
    def addresses_assigned(self, event: Any, position: int, cursor: Cursor) -> None:
        macs = [n["mac"] for n in event.addressing.get("macs", [])]
        self._set_machine(
            cursor, event, position, event.machine, ip=event.addressing.get("ip"), mac=macs[0] if macs else None
        )

    @on("Deployment.ProvisioningStarted")
    def provisioning(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, state=states.PROVISIONING)

    @on("Deployment.MachineProvisioned")
    def machine_provisioned(self, event: Any, position: int, cursor: Cursor) -> None:
        self._set_machine(
            cursor,
            event,
            position,
            event.machine,
            state="provisioned",
            vm_name=event.vm_name,
            ip=event.ip,
            mac=event.mac,
            resource_pool=event.resource_pool,
        )

    @on("Deployment.Deployed")
    def deployed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, state=states.DEPLOYED)

    @on("Deployment.ProvisioningFailed")
    def failed(self, event: Any, position: int, cursor: Cursor) -> None:
        machines = self._machines(cursor, str(event.originator_id))
        for machine in machines:
            machine.update(state="pending", vm_name=None, ip=None, mac=None, resource_pool=None)
        self._update(
            cursor,
            event,
            position,
            state=states.FAILED,
            failure=event.reason,
            machines=to_json(machines),
        )

    @on("Deployment.RetryRequested")
    def retried(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, state=states.REQUESTED, failure=None)

    @on("Deployment.MoveRequested")
    def move_requested(self, event: Any, position: int, cursor: Cursor) -> None:
        state = states.PROMOTING if event.direction == "promote" else states.DEMOTING
        self._update(
            cursor,
            event,
            position,
            state=state,
            target_stage=event.to_stage,
            target_pool=event.to_pool,
        )

    @on("Deployment.MachineMoved")
    def machine_moved(self, event: Any, position: int, cursor: Cursor) -> None:
        self._set_machine(cursor, event, position, event.machine, resource_pool=event.resource_pool)

    @on("Deployment.MachineRecloned")
    def machine_recloned(self, event: Any, position: int, cursor: Cursor) -> None:
        self._set_machine(
            cursor, event, position, event.machine, resource_pool=event.resource_pool, vm_name=event.vm_name
        )

    @on("Deployment.Moved")
    def moved(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute("SELECT target_pool FROM sk_deployments WHERE id = %s", (str(event.originator_id),))
        row = cursor.fetchone()
        self._update(
            cursor,
            event,
            position,
            state=states.DEPLOYED,
            stage=event.to_stage,
            target_stage=None,
            target_pool=None,
            resource_pool=row["target_pool"] if row else None,
        )

    @on("Deployment.MoveFailed")
    def move_failed(self, event: Any, position: int, cursor: Cursor) -> None:
        if event.rolled_back:
            cursor.execute(
                "SELECT resource_pool FROM sk_deployments WHERE id = %s",
                (str(event.originator_id),),
            )
            row = cursor.fetchone()
            machines = self._machines(cursor, str(event.originator_id))
            for machine in machines:
                if machine["state"] == "provisioned" and row is not None:
                    machine["resource_pool"] = row["resource_pool"]
            self._update(
                cursor,
                event,
                position,
                state=states.DEPLOYED,
                target_stage=None,
                machines=to_json(machines),
            )
        else:
            self._update(
                cursor,
                event,
                position,
                state=states.FAILED,
                target_stage=None,
                target_pool=None,
                failure=event.reason,
            )

    @on("Deployment.UndeployRequested")
    def undeploy_requested(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, state=states.UNDEPLOYING)

    @on("Deployment.MachineDestroyed")
    def machine_destroyed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._set_machine(cursor, event, position, event.machine, state="destroyed", resource_pool=None)

    @on("Deployment.Undeployed")
    def undeployed(self, event: Any, position: int, cursor: Cursor) -> None:
        self._update(cursor, event, position, state=states.UNDEPLOYED)

    @on("Deployment.StageRenamed")
    def stage_renamed(self, event: Any, position: int, cursor: Cursor) -> None:
        cursor.execute(
            "SELECT stage, target_stage FROM sk_deployments WHERE id = %s",
            (str(event.originator_id),),
        )
        row = cursor.fetchone()
        if row is None:
            return
        self._update(
            cursor,
            event,
            position,
            stage=event.new if row["stage"] == event.old else row["stage"],
            target_stage=event.new if row["target_stage"] == event.old else row["target_stage"],
        )
