"""The Deployment aggregate: one configuration version instantiated in one stage.

States: requested -> provisioning -> deployed -> undeploying -> undeployed, plus failed, and
promoting/demoting while VMs move between stages. The process manager records each step it
takes as an event here, so a restarted worker knows exactly where it stopped.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import drift_state, leases
from domain.drift_state import drift_view
from domain.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from domain.ports import POWER_ACTIONS

REQUESTED = "requested"
PROVISIONING = "provisioning"
DEPLOYED = "deployed"
PROMOTING = "promoting"
DEMOTING = "demoting"
UNDEPLOYING = "undeploying"
UPGRADING = "upgrading"  # reconciling its VMs with another version of its configuration, in place
UNDEPLOYED = "undeployed"
FAILED = "failed"
SWAPPING = "swapping"  # a copy taking a deployment's place (or giving it back), and the one it replaces

STATES = (
    REQUESTED,
    PROVISIONING,
    DEPLOYED,
    PROMOTING,
    DEMOTING,
    UNDEPLOYING,
    UNDEPLOYED,
    FAILED,
    UPGRADING,
    SWAPPING,
)
# States in which the process manager still has work to do.
ACTIVE_STATES = (REQUESTED, PROVISIONING, PROMOTING, DEMOTING, UNDEPLOYING, UPGRADING, SWAPPING)
UNDEPLOYABLE_FROM = (REQUESTED, PROVISIONING, DEPLOYED, FAILED)
# The states in which a machine's console can be opened and its power changed.
CONSOLE_STATES = (DEPLOYED, PROMOTING, DEMOTING, UPGRADING)
POWERED_ON = "poweredOn"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"
MAX_SNAPSHOTS = 32


class Deployment(Aggregate):
    TOPIC = "stagekeeper:Deployment"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Deployment.Created"

    @event("Requested", topic="stagekeeper:Deployment.Requested")
    def __init__(
        self,
        service_id: UUID,
        configuration_id: UUID,
        configuration_version: int,
        configuration_name: str,
        stage: str,
        resource_pool: str,
        networks: list[dict[str, Any]],
        machines: list[dict[str, Any]],
        actor: str,
        reason: str | None,
    ) -> None:
        self.service_id = service_id
        self.configuration_id = configuration_id
        self.configuration_version = configuration_version
        self.configuration_name = configuration_name
        self.stage = stage
        self.resource_pool = resource_pool
        self.networks = list(networks)
        self.state = REQUESTED
        self.failure: str | None = None
        self.attempt = 1
        self.requested_by = actor
        self.target_stage: str | None = None
        self.target_pool: str | None = None
        self.machines: list[dict[str, Any]] = [
            {
                "name": m["name"],
                "spec": m,
                "state": "pending",
                "vm_name": None,
                "vm_id": None,
                "ip": None,
                "mac": None,
                "resource_pool": None,
                "power": None,  # vCenter's power state as last recorded (poweredOn after provisioning)
                "power_pending": [],  # power actions requested and not yet carried out, oldest first
            }
            for m in machines
        ]

    # -- queries ---------------------------------------------------------------------------
    def machine(self, name: str) -> dict[str, Any]:
        for machine in self.machines:
            if machine["name"] == name:
                return machine
        raise NotFoundError(f"deployment has no machine '{name}'", field="machine")

    def view(self) -> dict[str, Any]:
        """Everything lists, the board and the board's history show of this deployment, as plain
        data. Read models store this, computed from the aggregate at each event's version, so
        the state machine above is the only one."""
        return {
            "id": str(self.id),
            "version": self.version,
            "service_id": str(self.service_id),
            "configuration_id": str(self.configuration_id),
            "configuration_name": self.configuration_name,
            "configuration_version": self.configuration_version,
            "stage": self.stage,
            "resource_pool": self.resource_pool,
            "target_stage": self.target_stage,
            "target_pool": self.target_pool,
            "target_version": self.upgrade["to_version"] if self.upgrade else None,
            "state": self.state,
            "failure": self.failure,
            "attempt": self.attempt,
            "requested_by": self.requested_by,
            # Fixed-width UTC text: its string order is time order (read models sort on it).
            "requested_at": self.created_on.astimezone(UTC).strftime(_TIME_FORMAT),
            "updated_at": self.modified_on.astimezone(UTC).strftime(_TIME_FORMAT),
            "machines": [self._machine_view(m) for m in self.machines],
            "captured": self.captured,  # adopted running VMs: undeploy lets go of them unless destroy_vms
            "fence": self.fence_view(),
            "copied_from": self.copy_view(),
            "snapshots": list(self.snapshots),
            "replaced": self.replaced,
            "replaced_by": self.replaced_by,
            "rebalance": self.rebalance_work,
            **drift_view(self.drift, self.verification),
            "lease": leases.lease_view(self.lease),
        }

    @staticmethod
    def _machine_view(machine: dict[str, Any]) -> dict[str, Any]:
        spec = machine["spec"]
        # Until the VM exists, the addresses assigned to it are the ones it will get.
        addressing = machine.get("addressing") or {}
        macs = [n["mac"] for n in addressing.get("macs", [])]
        return {
            "name": machine["name"],
            "template": spec.get("template"),
            "cpus": spec.get("cpus"),
            "memory_mib": spec.get("memory_mib"),
            "os": (spec.get("customization") or {}).get("os"),
            "clone_mode": spec.get("clone_mode"),
            "state": machine["state"],
            "vm_name": machine["vm_name"],
            "vm_id": machine["vm_id"],
            "ip": machine["ip"] if machine["ip"] is not None else addressing.get("ip"),
            "mac": machine["mac"] if machine["mac"] is not None else (macs[0] if macs else None),
            "resource_pool": machine["resource_pool"],
            # vCenter's power state as last recorded, and power actions not yet carried out.
            "power": machine.get("power"),
            "power_pending": list(machine.get("power_pending", [])),
            "copied_from": machine.get("copied_from"),
            # {cluster, resource_pool, host, datastore, reason}, while the machine is still in that pool.
            "placement": _placement_view(machine),
        }

    def _require(self, allowed: tuple[str, ...], action: str) -> None:
        if self.state not in allowed:
            raise InvalidTransitionError(
                f"cannot {action} a deployment that is {self.state} (allowed from: {', '.join(allowed)})"
            )

    # -- user commands -----------------------------------------------------------------------
    def request_move(self, to_stage: str, to_pool: str, direction: str, actor: str, reason: str | None) -> None:
        self._require((DEPLOYED,), "promote" if direction == "promote" else "demote")
        self._move_requested(
            from_stage=self.stage,
            to_stage=to_stage,
            to_pool=to_pool,
            direction=direction,
            actor=actor,
            reason=reason,
        )

    @event("MoveRequested", topic="stagekeeper:Deployment.MoveRequested")
    def _move_requested(
        self,
        from_stage: str,
        to_stage: str,
        to_pool: str,
        direction: str,
        actor: str,
        reason: str | None,
    ) -> None:
        self.state = PROMOTING if direction == "promote" else DEMOTING
        self.target_stage = to_stage
        self.target_pool = to_pool

    def request_undeploy(self, actor: str, reason: str | None) -> None:
        self._require(UNDEPLOYABLE_FROM, "undeploy")
        self._undeploy_requested(previous_state=self.state, actor=actor, reason=reason)

    @event("UndeployRequested", topic="stagekeeper:Deployment.UndeployRequested")
    def _undeploy_requested(self, previous_state: str, actor: str, reason: str | None) -> None:
        self.state = UNDEPLOYING

    def retry(self, actor: str, reason: str | None) -> None:
        self._require((FAILED,), "retry")
        if self.captured:  # provisioning would clone from templates and, failing, destroy the adopted VMs
            raise InvalidTransitionError("a captured deployment cannot be provisioned again: undeploy it, then capture")
        self._retried(attempt=self.attempt + 1, actor=actor, reason=reason)

    @event("RetryRequested", topic="stagekeeper:Deployment.RetryRequested")
    def _retried(self, attempt: int, actor: str, reason: str | None) -> None:
        self.state = REQUESTED
        self.attempt = attempt
        self.failure = None

    def follow_stage_rename(self, old: str, new: str, actor: str, reason: str | None) -> None:
        """The service renamed a stage this deployment lives in (or is moving to)."""
        if old in (self.stage, self.target_stage):
            self._stage_renamed(old=old, new=new, actor=actor, reason=reason)

    @event("StageRenamed", topic="stagekeeper:Deployment.StageRenamed")
    def _stage_renamed(self, old: str, new: str, actor: str, reason: str | None) -> None:
        if self.stage == old:
            self.stage = new
        if self.target_stage == old:
            self.target_stage = new

    # -- steps recorded by the process manager -------------------------------------------------
    def record_addresses(self, machine: str, addressing: dict[str, Any], actor: str) -> None:
        """The machine's IP (from a stage pool, or None for DHCP) and NIC MACs, claimed uniquely."""
        self._require((REQUESTED, PROVISIONING, UPGRADING), "assign addresses on")
        self.machine(machine)
        self._addresses_assigned(machine=machine, addressing=addressing, actor=actor, reason=None)

    @event("AddressesAssigned", topic="stagekeeper:Deployment.AddressesAssigned")
    def _addresses_assigned(self, machine: str, addressing: dict[str, Any], actor: str, reason: str | None) -> None:
        self.machine(machine)["addressing"] = addressing

    def start_provisioning(self, actor: str) -> None:
        self._require((REQUESTED,), "start provisioning")
        self._provisioning_started(attempt=self.attempt, actor=actor, reason=None)

    @event("ProvisioningStarted", topic="stagekeeper:Deployment.ProvisioningStarted")
    def _provisioning_started(self, attempt: int, actor: str, reason: str | None) -> None:
        self.state = PROVISIONING

    def record_machine_provisioned(
        self, machine: str, vm_name: str, vm_id: str, ip: str | None, mac: str | None, actor: str
    ) -> None:
        self._require((PROVISIONING, UPGRADING), "record a provisioned machine on")
        self.machine(machine)
        self._machine_provisioned(
            machine=machine,
            vm_name=vm_name,
            vm_id=vm_id,
            ip=ip,
            mac=mac,
            # The pool placement chose (a stage's other pool, in another cluster) or the stage's own.
            resource_pool=(self.machine(machine).get("placement") or {}).get("resource_pool") or self.resource_pool,
            actor=actor,
            reason=None,
        )

    @event("MachineProvisioned", topic="stagekeeper:Deployment.MachineProvisioned")
    def _machine_provisioned(
        self,
        machine: str,
        vm_name: str,
        vm_id: str,
        ip: str | None,
        mac: str | None,
        resource_pool: str,
        actor: str,
        reason: str | None,
    ) -> None:
        self.machine(machine).update(
            state="provisioned",
            vm_name=vm_name,
            vm_id=vm_id,
            ip=ip,
            mac=mac,
            resource_pool=resource_pool,
            power=POWERED_ON,
        )

    def mark_deployed(self, actor: str) -> None:
        self._require((PROVISIONING,), "complete")
        missing = [m["name"] for m in self.machines if m["state"] != "provisioned"]
        if missing:
            raise InvalidTransitionError(f"machines not provisioned yet: {', '.join(missing)}")
        self._deployed(actor=actor, reason=None)

    @event("Deployed", topic="stagekeeper:Deployment.Deployed")
    def _deployed(self, actor: str, reason: str | None) -> None:
        self.state = DEPLOYED

    def record_failure(self, reason: str, actor: str) -> None:
        self._require((REQUESTED, PROVISIONING), "fail")
        self._failed(actor=actor, reason=reason)

    @event("ProvisioningFailed", topic="stagekeeper:Deployment.ProvisioningFailed")
    def _failed(self, actor: str, reason: str | None) -> None:
        self.state = FAILED
        self.failure = reason
        for machine in self.machines:
            machine.update(state="pending", vm_name=None, vm_id=None, ip=None, mac=None, resource_pool=None, power=None)
            machine.pop("placement", None)  # placed again, on the inventory as it is then

    def record_machine_moved(self, machine: str, resource_pool: str, actor: str) -> None:
        self._require((PROMOTING, DEMOTING), "record a moved machine on")
        self.machine(machine)
        self._machine_moved(machine=machine, resource_pool=resource_pool, actor=actor, reason=None)

    @event("MachineMoved", topic="stagekeeper:Deployment.MachineMoved")
    def _machine_moved(self, machine: str, resource_pool: str, actor: str, reason: str | None) -> None:
        self.machine(machine)["resource_pool"] = resource_pool

    def record_machine_recloned(self, machine: str, resource_pool: str, vm_name: str, vm_id: str, actor: str) -> None:
        """A move across clusters: the machine now runs as a clone in the target pool."""
        self._require((PROMOTING, DEMOTING), "record a recloned machine on")
        self.machine(machine)
        self._machine_recloned(
            machine=machine, resource_pool=resource_pool, vm_name=vm_name, vm_id=vm_id, actor=actor, reason=None
        )

    @event("MachineRecloned", topic="stagekeeper:Deployment.MachineRecloned")
    def _machine_recloned(
        self, machine: str, resource_pool: str, vm_name: str, vm_id: str, actor: str, reason: str | None
    ) -> None:
        self.machine(machine).update(resource_pool=resource_pool, vm_name=vm_name, vm_id=vm_id, power=POWERED_ON)

    def complete_move(self, actor: str) -> None:
        self._require((PROMOTING, DEMOTING), "complete the move of")
        assert self.target_stage is not None
        assert self.target_pool is not None
        self._moved(
            direction="promote" if self.state == PROMOTING else "demote",
            from_stage=self.stage,
            to_stage=self.target_stage,
            actor=actor,
            reason=None,
        )

    @event("Moved", topic="stagekeeper:Deployment.Moved")
    def _moved(self, direction: str, from_stage: str, to_stage: str, actor: str, reason: str | None) -> None:
        self.stage = to_stage
        assert self.target_pool is not None
        self.resource_pool = self.target_pool
        self.target_stage = None
        self.target_pool = None
        self.state = DEPLOYED

    def record_move_failure(self, reason: str, rolled_back: bool, actor: str) -> None:
        self._require((PROMOTING, DEMOTING), "fail the move of")
        self._move_failed(rolled_back=rolled_back, actor=actor, reason=reason)

    @event("MoveFailed", topic="stagekeeper:Deployment.MoveFailed")
    def _move_failed(self, rolled_back: bool, actor: str, reason: str | None) -> None:
        self.target_stage = None
        self.target_pool = None
        if rolled_back:
            self.state = DEPLOYED
            for machine in self.machines:
                if machine["state"] == "provisioned":
                    machine["resource_pool"] = self.resource_pool
        else:
            self.state = FAILED
            self.failure = reason

    def record_machine_destroyed(self, machine: str, actor: str) -> None:
        self._require((UNDEPLOYING,), "record a destroyed machine on")
        self.machine(machine)
        self._machine_destroyed(machine=machine, actor=actor, reason=None)

    @event("MachineDestroyed", topic="stagekeeper:Deployment.MachineDestroyed")
    def _machine_destroyed(self, machine: str, actor: str, reason: str | None) -> None:
        self.machine(machine).update(state="destroyed", vm_id=None, resource_pool=None, power=None, power_pending=[])

    def mark_undeployed(self, actor: str) -> None:
        self._require((UNDEPLOYING,), "complete the undeploy of")
        self._undeployed(actor=actor, reason=None)

    @event("Undeployed", topic="stagekeeper:Deployment.Undeployed")
    def _undeployed(self, actor: str, reason: str | None) -> None:
        self.state = UNDEPLOYED

    # -- fenced networks ------------------------------------------------------------------------
    # Set by FenceRequested; None for an unfenced deployment (and every deployment made before).
    fence: dict[str, Any] | None = None

    def request_fence(self, stage: dict[str, Any], actor: str) -> None:
        """Fence this new deployment: one port group per configuration network on the stage's
        switch, and a gateway from the stage's template. Recorded in the same write as Requested."""
        self._require((REQUESTED,), "fence")
        names = [n["name"] for n in self.networks]
        for machine in self.machines:
            names.extend(nic["network"] for nic in machine["spec"].get("nics", []) if nic["network"] not in names)
        self._fence_requested(
            dvswitch=stage["dvswitch"], vlan_range=stage["vlan_range"],
            gateway_template=stage["fence_gateway_template"], external_network=stage["external_network"],
            networks=names, actor=actor, reason=None,
        )  # fmt: skip

    @event("FenceRequested", topic="stagekeeper:Deployment.FenceRequested")
    def _fence_requested(
        self, dvswitch: str, vlan_range: dict[str, int], gateway_template: str, external_network: str,
        networks: list[str], actor: str, reason: str | None,
    ) -> None:  # fmt: skip
        self.fence = {
            "dvswitch": dvswitch, "vlan_range": dict(vlan_range), "gateway_template": gateway_template,
            "external_network": external_network, "requested_networks": list(networks), "networks": [],
            "gateway": None, "nat": [],
        }  # fmt: skip

    def record_fence_plan(
        self, networks: list[dict[str, Any]], gateway: dict[str, Any], nat: list[dict[str, Any]], actor: str
    ) -> None:
        """VLANs, port group names, the gateway's name and external IP and the NAT map, claimed in
        the same write (the machines' own addresses are recorded by AddressesAssigned)."""
        self._require((REQUESTED, PROVISIONING), "plan the fence of")
        if self.fence is None:
            raise InvalidTransitionError("this deployment is not fenced")
        self._fence_planned(networks=networks, gateway=gateway, nat=nat, actor=actor, reason=None)

    @event("FencePlanned", topic="stagekeeper:Deployment.FencePlanned")
    def _fence_planned(
        self, networks: list[dict[str, Any]], gateway: dict[str, Any], nat: list[dict[str, Any]], actor: str,
        reason: str | None,
    ) -> None:  # fmt: skip
        assert self.fence is not None
        self.fence = {
            **self.fence,
            "networks": [{**n, "created": False} for n in networks],
            "gateway": {**gateway, "vm_id": None},
            "nat": [dict(n) for n in nat],
        }

    @property
    def fence_planned(self) -> bool:
        return self.fence is not None and self.fence["gateway"] is not None

    def record_fence_network(self, network: str, created: bool, actor: str) -> None:
        """A fenced network's port group now exists (created) or is gone (not created)."""
        assert self.fence is not None
        if any(n["network"] == network and n["created"] != created for n in self.fence["networks"]):
            self._fence_network_changed(network=network, created=created, actor=actor, reason=None)

    @event("FenceNetworkChanged", topic="stagekeeper:Deployment.FenceNetworkChanged")
    def _fence_network_changed(self, network: str, created: bool, actor: str, reason: str | None) -> None:
        assert self.fence is not None
        self.fence = {
            **self.fence,
            "networks": [{**n, "created": created} if n["network"] == network else n for n in self.fence["networks"]],
        }

    def record_fence_network_added(self, network: str, portgroup: str, vlan: int, actor: str) -> None:
        """An upgrade brings a network the fence lacks: its port group and VLAN (claimed in the
        same write); the port group is made next (FenceNetworkChanged)."""
        self._require((UPGRADING,), "add a fenced network to")
        assert self.fence is not None
        if all(n["network"] != network for n in self.fence["networks"]):
            self._fence_network_added(network=network, portgroup=portgroup, vlan=vlan, actor=actor, reason=None)

    @event("FenceNetworkAdded", topic="stagekeeper:Deployment.FenceNetworkAdded")
    def _fence_network_added(self, network: str, portgroup: str, vlan: int, actor: str, reason: str | None) -> None:
        assert self.fence is not None
        entry = {"network": network, "portgroup": portgroup, "vlan": vlan, "created": False}
        self.fence = {**self.fence, "networks": [*self.fence["networks"], entry]}

    def record_fence_network_removed(self, network: str, actor: str) -> None:
        """An upgrade dropped a network: its port group is gone (after the machines and the gateway
        left it); its VLAN is released in the same write."""
        self._require((UPGRADING,), "remove a fenced network from")
        assert self.fence is not None
        found = [n for n in self.fence["networks"] if n["network"] == network]
        if found and found[0]["created"]:
            raise InvalidTransitionError(f"the port group of network '{network}' still exists")
        if found:
            self._fence_network_removed(network=network, actor=actor, reason=None)

    @event("FenceNetworkRemoved", topic="stagekeeper:Deployment.FenceNetworkRemoved")
    def _fence_network_removed(self, network: str, actor: str, reason: str | None) -> None:
        assert self.fence is not None
        self.fence = {**self.fence, "networks": [n for n in self.fence["networks"] if n["network"] != network]}

    def record_fence_nat_added(self, machine: str, internal_ip: str, external_ip: str, actor: str) -> None:
        """An upgrade adds a machine with an IP to the fence: the gateway maps it to an external
        address of the stage's pool (claimed in the same write)."""
        self._require((UPGRADING,), "add a NAT entry to")
        if self.fence is None or not self.fence_planned:
            raise InvalidTransitionError("this deployment is not fenced")
        if all(n["machine"] != machine for n in self.fence["nat"]):
            self._fence_nat_added(
                machine=machine, internal_ip=internal_ip, external_ip=external_ip, actor=actor, reason=None
            )

    @event("FenceNatAdded", topic="stagekeeper:Deployment.FenceNatAdded")
    def _fence_nat_added(
        self, machine: str, internal_ip: str, external_ip: str, actor: str, reason: str | None
    ) -> None:
        assert self.fence is not None
        entry = {"machine": machine, "internal_ip": internal_ip, "external_ip": external_ip}
        self.fence = {**self.fence, "nat": [*self.fence["nat"], entry]}

    def record_fence_nat_removed(self, machine: str, actor: str) -> None:
        """An upgrade removes a machine from the fence: its NAT entry goes (its external address is
        released in the same write)."""
        self._require((UPGRADING,), "remove a NAT entry from")
        if self.fence is not None and any(n["machine"] == machine for n in self.fence["nat"]):
            self._fence_nat_removed(machine=machine, actor=actor, reason=None)

    @event("FenceNatRemoved", topic="stagekeeper:Deployment.FenceNatRemoved")
    def _fence_nat_removed(self, machine: str, actor: str, reason: str | None) -> None:
        assert self.fence is not None
        self.fence = {**self.fence, "nat": [n for n in self.fence["nat"] if n["machine"] != machine]}

    def record_fence_gateway(self, vm_id: str | None, actor: str) -> None:
        """The gateway VM was provisioned (its id) or destroyed (None)."""
        assert self.fence is not None
        assert self.fence["gateway"] is not None
        if self.fence["gateway"]["vm_id"] != vm_id:
            self._fence_gateway_changed(vm_id=vm_id, actor=actor, reason=None)

    @event("FenceGatewayChanged", topic="stagekeeper:Deployment.FenceGatewayChanged")
    def _fence_gateway_changed(self, vm_id: str | None, actor: str, reason: str | None) -> None:
        assert self.fence is not None
        self.fence = {**self.fence, "gateway": {**self.fence["gateway"], "vm_id": vm_id}}

    def fence_view(self) -> dict[str, Any] | None:
        if self.fence is None:
            return None
        gateway = self.fence["gateway"]
        return {
            "dvswitch": self.fence["dvswitch"],
            "networks": [{k: n[k] for k in ("network", "portgroup", "vlan")} for n in self.fence["networks"]],
            "gateway": None
            if gateway is None
            else {"vm_name": gateway["vm_name"], "external_ip": gateway["external_ip"]},
            "nat": [dict(n) for n in self.fence["nat"]],
        }

    # -- copies of live deployments -------------------------------------------------------------
    # Set by CopyRequested; None for a deployment built from templates.
    copy_of: dict[str, Any] | None = None

    def record_copy_source(self, source: Deployment, linked: bool, actor: str, reason: str | None) -> None:
        """This new deployment copies the running VMs of `source` (same configuration version)."""
        self._require((REQUESTED,), "copy into")
        machines = {
            m["name"]: {"vm_id": m["vm_id"], "vm_name": m["vm_name"], "addressing": m.get("addressing")}
            for m in source.machines
        }
        self._copy_requested(
            source_deployment_id=source.id, source_stage=source.stage,
            source_configuration_version=source.configuration_version, machines=machines, linked=linked,
            actor=actor, reason=reason,
        )  # fmt: skip

    @event("CopyRequested", topic="stagekeeper:Deployment.CopyRequested")
    def _copy_requested(
        self, source_deployment_id: UUID, source_stage: str, source_configuration_version: int,
        machines: dict[str, Any], linked: bool, actor: str, reason: str | None,
    ) -> None:  # fmt: skip
        self.copy_of = {
            "deployment_id": str(source_deployment_id), "stage": source_stage,
            "configuration_version": source_configuration_version, "machines": machines, "linked": linked,
        }  # fmt: skip
        for machine in self.machines:
            source = machines.get(machine["name"])
            machine["copied_from"] = source["vm_name"] if source else None

    # Copies made of this deployment, oldest first (the process manager builds the pending ones together).
    copies: tuple[str, ...] = ()

    def record_copy_made(self, copy_id: UUID, stage: str, actor: str, reason: str | None) -> None:
        self._require((DEPLOYED,), "copy")
        self._copied(copy_id=copy_id, stage=stage, actor=actor, reason=reason)

    @event("Copied", topic="stagekeeper:Deployment.Copied")
    def _copied(self, copy_id: UUID, stage: str, actor: str, reason: str | None) -> None:
        self.copies = (*self.copies, str(copy_id))

    # Source machines whose snapshot this linked copy was cloned from has been removed (on undeploy,
    # once the copy's VMs are gone). A class default: older deployments have none.
    copy_snapshots_removed: tuple[str, ...] = ()

    def record_copy_snapshot_removed(self, machine: str, actor: str) -> None:
        """The snapshot taken for this linked copy on the source machine's VM is gone."""
        self._require((UNDEPLOYING,), "record a removed copy snapshot on")
        if self.copy_of is None or machine not in self.copy_of["machines"]:
            raise InvalidTransitionError(f"machine '{machine}' is not copied from a source VM")
        if machine not in self.copy_snapshots_removed:
            self._copy_snapshot_removed(machine=machine, actor=actor, reason=None)

    @event("CopySnapshotRemoved", topic="stagekeeper:Deployment.CopySnapshotRemoved")
    def _copy_snapshot_removed(self, machine: str, actor: str, reason: str | None) -> None:
        self.copy_snapshots_removed = (*self.copy_snapshots_removed, machine)

    def copy_view(self) -> dict[str, Any] | None:
        if self.copy_of is None:
            return None
        return {k: self.copy_of[k] for k in ("deployment_id", "stage", "configuration_version", "linked")}

    # -- snapshots of the whole deployment -------------------------------------------------------
    # Names of completed snapshots, oldest first; the pending operation ({"action", "name",
    # "done": [machines]}) while the process manager carries it out. Class defaults: older
    # deployments have none.
    snapshots: tuple[str, ...] = ()
    snapshot_work: dict[str, Any] | None = None
    # What each snapshot covers ({"name", "configuration_version", "machines"}), from SnapshotTaken;
    # snapshots taken before that event existed have no record (their revert is not checked).
    snapshot_records: tuple[dict[str, Any], ...] = ()

    def request_snapshot(self, name: str, actor: str, reason: str | None) -> None:
        self._require((DEPLOYED,), "snapshot")
        self._check_no_snapshot_work("name")
        if name in self.snapshots:
            raise ConflictError(f"the deployment has a snapshot '{name}' already", field="name")
        if len(self.snapshots) >= MAX_SNAPSHOTS:
            raise ConflictError(f"a deployment keeps at most {MAX_SNAPSHOTS} snapshots", field="name")
        self._snapshot_requested(name=name, actor=actor, reason=reason)

    @event("SnapshotRequested", topic="stagekeeper:Deployment.SnapshotRequested")
    def _snapshot_requested(self, name: str, actor: str, reason: str | None) -> None:
        self.snapshot_work = {"action": "snapshot", "name": name, "done": []}

    def request_revert(self, name: str, actor: str, reason: str | None) -> None:
        self._require((DEPLOYED,), "revert")
        self._check_replaced("revert (which powers its machines on)", "snapshot")
        self._check_no_snapshot_work("snapshot")
        if name not in self.snapshots:
            raise NotFoundError(f"the deployment has no snapshot '{name}'", field="snapshot")
        self._check_snapshot_fits(name)
        self._revert_requested(snapshot=name, actor=actor, reason=reason)

    def _check_snapshot_fits(self, name: str) -> None:
        """A revert brings back each VM's hardware as it was: refused when the snapshot was taken at
        another configuration version (an upgrade since) or does not cover every machine."""
        record = next((r for r in self.snapshot_records if r["name"] == name), None)
        if record is None:
            return
        taken_at = record["configuration_version"]
        if taken_at != self.configuration_version:
            raise ConflictError(
                f"snapshot '{name}' was taken at version {taken_at} of the configuration and the deployment "
                f"now runs version {self.configuration_version}: reverting would bring back its machines as "
                f"they were at version {taken_at}",
                field="snapshot",
            )
        missing = [m["name"] for m in self.machines if m["name"] not in record["machines"]]
        if missing:
            raise ConflictError(
                f"snapshot '{name}' does not cover machine(s) {', '.join(missing)}: they have no such snapshot",
                field="snapshot",
            )

    @event("RevertRequested", topic="stagekeeper:Deployment.RevertRequested")
    def _revert_requested(self, snapshot: str, actor: str, reason: str | None) -> None:
        self.snapshot_work = {"action": "revert", "name": snapshot, "done": []}

    def _check_no_snapshot_work(self, field: str) -> None:
        if self.snapshot_work is not None:
            work = self.snapshot_work
            raise ConflictError(f"a {work['action']} to '{work['name']}' is still running", field=field)

    def record_machine_snapshot(self, machine: str, actor: str) -> None:
        """One machine's snapshot was taken (or its VM reverted to it, then powered on)."""
        self.machine(machine)
        if self.snapshot_work is None or machine in self.snapshot_work["done"]:
            return
        work = self.snapshot_work
        self._machine_snapshot_done(machine=machine, action=work["action"], name=work["name"], actor=actor, reason=None)

    @event("MachineSnapshotDone", topic="stagekeeper:Deployment.MachineSnapshotDone")
    def _machine_snapshot_done(self, machine: str, action: str, name: str, actor: str, reason: str | None) -> None:
        assert self.snapshot_work is not None
        self.snapshot_work = {**self.snapshot_work, "done": [*self.snapshot_work["done"], machine]}
        if action == "revert":
            self.machine(machine)["power"] = POWERED_ON

    def complete_snapshot_work(self, failure: str | None, actor: str) -> None:
        if self.snapshot_work is None:
            return
        work = self.snapshot_work
        if work["action"] == "snapshot" and failure is None:
            self._snapshot_taken(
                name=work["name"], configuration_version=self.configuration_version, machines=list(work["done"]),
                actor=actor, reason=None,
            )  # fmt: skip
        self._snapshot_work_ended(
            action=work["action"], name=work["name"], failed=failure is not None, actor=actor, reason=failure
        )

    @event("SnapshotTaken", topic="stagekeeper:Deployment.SnapshotTaken")
    def _snapshot_taken(
        self, name: str, configuration_version: int, machines: list[str], actor: str, reason: str | None
    ) -> None:
        record = {"name": name, "configuration_version": configuration_version, "machines": list(machines)}
        self.snapshot_records = (*self.snapshot_records, record)

    @event("SnapshotWorkEnded", topic="stagekeeper:Deployment.SnapshotWorkEnded")
    def _snapshot_work_ended(self, action: str, name: str, failed: bool, actor: str, reason: str | None) -> None:
        if action == "snapshot" and not failed:
            self.snapshots = (*self.snapshots, name)
        self.snapshot_work = None

    # -- swap: a tested copy takes a deployment's place ------------------------------------------
    # During a swap both deployments are swapping: `swap` says which role each plays. After it,
    # the incoming one `replaced` the other, which (kept, powered off) was `replaced_by` it.
    swap: dict[str, Any] | None = None
    replaced: str | None = None
    replaced_by: str | None = None

    def request_swap_in(
        self, outgoing: Deployment, to_pool: str, keep_previous: bool, back: bool, actor: str, reason: str | None
    ) -> None:
        self._require((DEPLOYED,), "swap in")
        self._swap_requested(
            replaces=outgoing.id, from_stage=self.stage, to_stage=outgoing.stage, to_pool=to_pool,
            keep_previous=keep_previous, back=back, actor=actor, reason=reason,
        )  # fmt: skip

    @event("SwapRequested", topic="stagekeeper:Deployment.SwapRequested")
    def _swap_requested(
        self, replaces: UUID, from_stage: str, to_stage: str, to_pool: str, keep_previous: bool, back: bool,
        actor: str, reason: str | None,
    ) -> None:  # fmt: skip
        self.state = SWAPPING
        self.target_stage = to_stage if to_stage != self.stage else None
        self.target_pool = to_pool if to_stage != self.stage else None
        self.swap = {
            "role": "incoming", "partner": str(replaces), "to_stage": to_stage, "to_pool": to_pool,
            "keep_previous": keep_previous, "back": back, "done": [],
        }  # fmt: skip

    def request_swap_out(
        self,
        incoming: Deployment,
        keep_previous: bool,
        back: bool,
        actor: str,
        reason: str | None,
        destroy_vms: bool | None = None,
    ) -> None:
        """Be replaced by `incoming`. Not kept, a captured deployment's VMs are let go of (untagged,
        left powered off) unless `destroy_vms` is true: the rule undeploy follows."""
        if self.state != DEPLOYED:
            raise InvalidTransitionError(
                f"replaces: deployment {self.id} is {self.state} and cannot be replaced (only a deployed one can)",
                field="replaces",
            )
        if self.replaced_by is not None:
            # Its replacement holds its addresses: a second copy in its place would run beside it.
            raise ConflictError(
                f"replaces: deployment {self.id} was already replaced by deployment {self.replaced_by}; "
                f"replace {self.replaced_by} instead, or swap {self.id} back first",
                field="replaces",
            )
        if destroy_vms is not None and keep_previous:
            raise ValidationError("destroy_vms applies only with keep_previous false", field="destroy_vms")
        if destroy_vms is False and not self.captured:
            raise ValidationError(
                "destroy_vms: false lets go of captured VMs only; the replaced deployment's VMs were built by "
                "Stagekeeper",
                field="destroy_vms",
            )
        let_go = self.captured and not keep_previous and destroy_vms is not True
        self._swap_out_requested(
            replaced_by=incoming.id, keep_previous=keep_previous, back=back, actor=actor, reason=reason, let_go=let_go
        )

    @event("SwapOutRequested", topic="stagekeeper:Deployment.SwapOutRequested")
    def _swap_out_requested(
        self, replaced_by: UUID, keep_previous: bool, back: bool, actor: str, reason: str | None, let_go: bool = False
    ) -> None:
        self.state = SWAPPING
        self.swap = {
            "role": "outgoing", "partner": str(replaced_by), "keep_previous": keep_previous, "back": back,
            "let_go": let_go,
        }  # fmt: skip

    def record_swap_step(self, step: str, machine: str, actor: str) -> None:
        """One step of the swap done for one machine ("off" of the outgoing one; "moved",
        "joined" (left the fence) and "on" of the incoming one)."""
        self._require((SWAPPING,), "record a swap step on")
        assert self.swap is not None
        if f"{step}:{machine}" not in self.swap["done"]:
            self._swap_step_done(step=step, machine=machine, actor=actor, reason=None)

    @event("SwapStepDone", topic="stagekeeper:Deployment.SwapStepDone")
    def _swap_step_done(self, step: str, machine: str, actor: str, reason: str | None) -> None:
        assert self.swap is not None
        self.swap = {**self.swap, "done": [*self.swap["done"], f"{step}:{machine}"]}
        if step == "moved":
            self.machine(machine)["resource_pool"] = self.swap["to_pool"]

    def swap_step_done(self, step: str, machine: str) -> bool:
        return self.swap is not None and f"{step}:{machine}" in self.swap.get("done", [])

    def record_swap_attempt_failed(self, reason: str, actor: str) -> None:
        """vCenter failed a step of this (incoming) swap (counted in `swap_failures`)."""
        self._require((SWAPPING,), "record a failed swap attempt on")
        assert self.swap is not None
        self._swap_attempt_failed(attempt=self.swap_failures + 1, actor=actor, reason=reason)

    @event("SwapAttemptFailed", topic="stagekeeper:Deployment.SwapAttemptFailed")
    def _swap_attempt_failed(self, attempt: int, actor: str, reason: str | None) -> None:
        assert self.swap is not None
        self.swap = {**self.swap, "failures": attempt, "last_failure": reason}

    @property
    def swap_failures(self) -> int:
        return int((self.swap or {}).get("failures", 0))

    def fail_swap(self, reason: str, actor: str) -> None:
        """The swap is given up: both deployments are deployed again where they stand (the
        replaced one running again, the copy in its own stage), vCenter's message recorded."""
        self._require((SWAPPING,), "fail the swap of")
        assert self.swap is not None
        self._swap_failed(partner=UUID(self.swap["partner"]), role=self.swap["role"], actor=actor, reason=reason)

    @event("SwapFailed", topic="stagekeeper:Deployment.SwapFailed")
    def _swap_failed(self, partner: UUID, role: str, actor: str, reason: str | None) -> None:
        self.state = DEPLOYED
        self.failure = reason
        self.target_stage = None
        self.target_pool = None
        self.swap = None
        if role == "outgoing":
            for machine in self.machines:
                machine["power"] = POWERED_ON

    def complete_swap_in(self, actor: str) -> None:
        self._require((SWAPPING,), "complete the swap of")
        assert self.swap is not None
        self._swapped(
            replaced=UUID(self.swap["partner"]), from_stage=self.stage, to_stage=self.swap["to_stage"],
            left_fence=self.fence is not None, actor=actor, reason=None,
        )  # fmt: skip

    @event("Swapped", topic="stagekeeper:Deployment.Swapped")
    def _swapped(
        self, replaced: UUID, from_stage: str, to_stage: str, left_fence: bool, actor: str, reason: str | None
    ) -> None:
        assert self.swap is not None
        self.stage = to_stage
        self.resource_pool = self.swap["to_pool"]
        self.target_stage = None
        self.target_pool = None
        self.fence = None
        self.replaced = str(replaced)
        self.replaced_by = None
        self.state = DEPLOYED
        self.swap = None
        for machine in self.machines:
            machine["power"] = POWERED_ON
            if not machine.get("captured_vm_id"):  # adopted VMs stay in their own pools (swap-back)
                machine["resource_pool"] = self.resource_pool

    def complete_swap_out(self, actor: str) -> None:
        self._require((SWAPPING,), "complete the swap of")
        assert self.swap is not None
        self._swapped_out(
            replaced_by=UUID(self.swap["partner"]), kept=self.swap["keep_previous"], actor=actor, reason=None
        )

    @event("SwappedOut", topic="stagekeeper:Deployment.SwappedOut")
    def _swapped_out(self, replaced_by: UUID, kept: bool, actor: str, reason: str | None) -> None:
        self.replaced_by = str(replaced_by)
        self.replaced = None
        # Not kept, a captured deployment lets go of its VMs unless the swap said destroy_vms.
        self.letting_go = not kept and self.swap is not None and bool(self.swap.get("let_go"))
        self.swap = None
        self.state = DEPLOYED if kept else UNDEPLOYING
        for machine in self.machines:
            machine["power"] = "poweredOff"

    # -- consoles and power of one machine -----------------------------------------------------
    def running_machine(self, name: str, action: str) -> dict[str, Any]:
        """The machine, if it has a VM that can be reached now (for consoles and power)."""
        self._require(CONSOLE_STATES, action)
        machine = self.machine(name)
        if not machine.get("vm_id"):
            raise InvalidTransitionError(f"machine '{name}' has no VM to {action}")
        return machine

    def _check_replaced(self, action: str, field: str) -> None:
        """A replaced, kept deployment stays off: its replacement runs with its IPs and MACs."""
        if self.replaced_by is not None:
            raise ConflictError(
                f"cannot {action} deployment {self.id}: it was replaced by deployment {self.replaced_by}, "
                "which runs with its addresses; swap it back to bring it back",
                field=field,
            )

    def request_power(self, machine: str, action: str, actor: str, reason: str | None) -> None:
        if action not in POWER_ACTIONS:
            raise ValidationError(f"action must be one of {', '.join(POWER_ACTIONS)}", field="action")
        self._require((DEPLOYED,), f"power {action} a machine of")
        if action == "on":
            self._check_replaced(f"power on machine '{machine}' of", "action")
        current = self.running_machine(machine, f"power {action}").get("power")
        if action in ("off", "reset") and current != POWERED_ON:
            raise InvalidTransitionError(f"cannot {action} machine '{machine}': it is {current or 'not running'}")
        self._power_requested(machine=machine, action=action, actor=actor, reason=reason)

    @event("PowerRequested", topic="stagekeeper:Deployment.PowerRequested")
    def _power_requested(self, machine: str, action: str, actor: str, reason: str | None) -> None:
        found = self.machine(machine)
        found["power_pending"] = [*found.get("power_pending", []), action]

    def record_power_changed(self, machine: str, action: str, power_state: str, actor: str) -> None:
        self.machine(machine)
        self._machine_power_changed(machine=machine, action=action, power_state=power_state, actor=actor, reason=None)

    @event("MachinePowerChanged", topic="stagekeeper:Deployment.MachinePowerChanged")
    def _machine_power_changed(
        self, machine: str, action: str, power_state: str, actor: str, reason: str | None
    ) -> None:
        found = self.machine(machine)
        found["power"] = power_state
        found["power_pending"] = found.get("power_pending", [])[1:]

    def record_power_failure(self, machine: str, action: str, reason: str, actor: str) -> None:
        self.machine(machine)
        self._power_failed(machine=machine, action=action, actor=actor, reason=reason)

    @event("PowerFailed", topic="stagekeeper:Deployment.PowerFailed")
    def _power_failed(self, machine: str, action: str, actor: str, reason: str | None) -> None:
        found = self.machine(machine)
        found["power_pending"] = found.get("power_pending", [])[1:]

    def record_console_opened(self, machine: str, vm_id: str, actor: str) -> None:
        """A console ticket was issued to `actor` (the ticket itself is never recorded)."""
        self.machine(machine)
        self._console_opened(machine=machine, vm_id=vm_id, actor=actor, reason=None)

    @event("ConsoleOpened", topic="stagekeeper:Deployment.ConsoleOpened")
    def _console_opened(self, machine: str, vm_id: str, actor: str, reason: str | None) -> None:
        pass  # an audit fact: it changes nothing in the deployment

    # -- captured deployments ----------------------------------------------------------------
    # A captured deployment adopts VMs that existed before Stagekeeper: created with the usual
    # Requested event and, in the same write, Captured (deployed at once: no clone, no power
    # change). The process manager then tags each VM (MachineTagged). Undeploying it either
    # destroys the VMs (UndeployRequested) or lets go of them (LetGoRequested: tags removed,
    # MachineReleased, VMs left running). Class defaults keep older deployments readable.
    captured = False
    letting_go = False

    def adopt(self, machines: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        """Record the existing VMs this (just requested) deployment adopts, with their addresses."""
        self._require((REQUESTED,), "capture")
        for machine in machines:
            self.machine(machine["name"])
        self._captured(machines=machines, actor=actor, reason=reason)

    @event("Captured", topic="stagekeeper:Deployment.Captured")
    def _captured(self, machines: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        self.captured = True
        self.state = DEPLOYED
        for adopted in machines:
            self.machine(adopted["name"]).update(
                state="provisioned",
                vm_name=adopted["vm_name"],
                vm_id=adopted["vm_id"],
                ip=adopted["ip"],
                mac=adopted["mac"],
                resource_pool=adopted["resource_pool"],
                power=adopted["power"],
                addressing=adopted["addressing"],
                tagged=False,
                captured_vm_id=adopted["vm_id"],  # kept after undeploy: the VM claim it releases
            )

    def untagged_machines(self) -> list[dict[str, Any]]:
        """Captured machines whose VM does not carry Stagekeeper's tags yet."""
        if not self.captured or self.state in (UNDEPLOYING, UNDEPLOYED):
            return []
        return [m for m in self.machines if m.get("vm_id") and m.get("tagged") is False]

    def record_machine_tagged(self, machine: str, actor: str) -> None:
        if self.machine(machine).get("tagged") is not False:
            raise InvalidTransitionError(f"machine '{machine}' needs no tagging")
        self._machine_tagged(machine=machine, vm_id=self.machine(machine)["vm_id"], actor=actor, reason=None)

    @event("MachineTagged", topic="stagekeeper:Deployment.MachineTagged")
    def _machine_tagged(self, machine: str, vm_id: str, actor: str, reason: str | None) -> None:
        self.machine(machine)["tagged"] = True

    def request_let_go(self, actor: str, reason: str | None) -> None:
        """Stop managing a captured deployment's VMs, leaving them as they run."""
        if not self.captured:
            raise ValidationError(
                "destroy_vms: false lets go of captured VMs only; this deployment's VMs were built by Stagekeeper",
                field="destroy_vms",
            )
        self._require(UNDEPLOYABLE_FROM, "undeploy")
        self._let_go_requested(previous_state=self.state, actor=actor, reason=reason)

    @event("LetGoRequested", topic="stagekeeper:Deployment.LetGoRequested")
    def _let_go_requested(self, previous_state: str, actor: str, reason: str | None) -> None:
        self.state = UNDEPLOYING
        self.letting_go = True

    def record_machine_released(self, machine: str, actor: str) -> None:
        self._require((UNDEPLOYING,), "record a released machine on")
        self._machine_released(machine=machine, vm_id=self.machine(machine)["vm_id"], actor=actor, reason=None)

    @event("MachineReleased", topic="stagekeeper:Deployment.MachineReleased")
    def _machine_released(self, machine: str, vm_id: str, actor: str, reason: str | None) -> None:
        self.machine(machine).update(state="released", vm_id=None, resource_pool=None, power=None, power_pending=[])

    # -- upgrade in place and whole-deployment power -------------------------------------------
    # The target of an upgrade in progress: {"from_version", "to_version", "networks", "machines"}.
    # A class default, so deployments (and snapshots) from before upgrades existed read as None.
    upgrade: dict[str, Any] | None = None

    def request_upgrade(
        self,
        version: int,
        networks: list[dict[str, Any]],
        machines: list[dict[str, Any]],
        actor: str,
        reason: str | None,
    ) -> None:
        self._require((DEPLOYED,), "upgrade")
        if version == self.configuration_version:
            raise InvalidTransitionError(f"the deployment already runs version {version} of its configuration")
        busy = [m["name"] for m in self.machines if m.get("power_pending")]
        if busy:
            raise InvalidTransitionError(f"machines have power actions still pending: {', '.join(busy)}")
        self._upgrade_requested(
            from_version=self.configuration_version, to_version=version, networks=networks, machines=machines,
            actor=actor, reason=reason,
        )  # fmt: skip

    @event("UpgradeRequested", topic="stagekeeper:Deployment.UpgradeRequested")
    def _upgrade_requested(
        self,
        from_version: int,
        to_version: int,
        networks: list[dict[str, Any]],
        machines: list[dict[str, Any]],
        actor: str,
        reason: str | None,
    ) -> None:
        self.state = UPGRADING
        self.failure = None
        self.upgrade = {
            "from_version": from_version,
            "to_version": to_version,
            "networks": networks,
            "machines": machines,
        }
        present = {m["name"] for m in self.machines}
        self.machines.extend(_new_machine(m) for m in machines if m["name"] not in present)

    def upgrade_target(self, name: str) -> dict[str, Any] | None:
        """The spec machine `name` has in the version being upgraded to (None: it goes away)."""
        assert self.upgrade is not None
        return next((m for m in self.upgrade["machines"] if m["name"] == name), None)

    def record_machine_reconfigured(self, machine: str, power_cycled: bool, actor: str) -> None:
        """The machine's VM now has the target version's CPU, memory, disks and NICs."""
        self._require((UPGRADING,), "record a reconfigured machine on")
        target = self.upgrade_target(machine)
        if target is None:
            raise InvalidTransitionError(f"machine '{machine}' is not part of version {self._to_version()}")
        before = self.machine(machine)["spec"]
        self._machine_reconfigured(
            machine=machine, before=before, after=target, power_cycled=power_cycled, actor=actor, reason=None
        )

    @event("MachineReconfigured", topic="stagekeeper:Deployment.MachineReconfigured")
    def _machine_reconfigured(
        self, machine: str, before: dict[str, Any], after: dict[str, Any], power_cycled: bool, actor: str,
        reason: str | None,
    ) -> None:  # fmt: skip
        self.machine(machine)["spec"] = after

    def record_nics_changed(self, machine: str, macs: list[dict[str, Any]], actor: str) -> None:
        """The machine's NICs follow the target version: MACs kept per network, new ones claimed."""
        self._require((UPGRADING,), "record changed NICs on")
        self.machine(machine)
        self._nics_changed(machine=machine, macs=macs, actor=actor, reason=None)

    @event("MachineNicsChanged", topic="stagekeeper:Deployment.MachineNicsChanged")
    def _nics_changed(self, machine: str, macs: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        found = self.machine(machine)
        found["addressing"] = {**(found.get("addressing") or {}), "macs": macs}
        found["mac"] = macs[0]["mac"] if macs else None

    def record_machine_removed(self, machine: str, actor: str) -> None:
        """The machine is not in the target version: its VM is destroyed, its addresses released."""
        self._require((UPGRADING,), "record a removed machine on")
        if self.upgrade_target(machine) is not None:
            raise InvalidTransitionError(f"machine '{machine}' is part of version {self._to_version()}")
        self.machine(machine)
        self._machine_removed(machine=machine, actor=actor, reason=None)

    @event("MachineRemoved", topic="stagekeeper:Deployment.MachineRemoved")
    def _machine_removed(self, machine: str, actor: str, reason: str | None) -> None:
        self.machines = [m for m in self.machines if m["name"] != machine]

    def record_machine_rebuilding(self, machine: str, changed: list[str], actor: str) -> None:
        """The machine's template, clone mode or customisation changes: its VM is destroyed (done
        before this is recorded), its addresses released, and it is built anew from the target."""
        self._require((UPGRADING,), "rebuild a machine of")
        if self.upgrade_target(machine) is None:
            raise InvalidTransitionError(f"machine '{machine}' is not part of version {self._to_version()}")
        self.machine(machine)
        self._machine_rebuilding(machine=machine, changed=changed, actor=actor, reason=None)

    @event("MachineRebuilding", topic="stagekeeper:Deployment.MachineRebuilding")
    def _machine_rebuilding(self, machine: str, changed: list[str], actor: str, reason: str | None) -> None:
        found = self.machine(machine)
        target = self.upgrade_target(machine)
        found.update(_new_machine(target if target is not None else found["spec"]))

    def complete_upgrade(self, actor: str) -> None:
        self._require((UPGRADING,), "complete the upgrade of")
        assert self.upgrade is not None
        wanted = {m["name"]: m for m in self.upgrade["machines"]}
        behind = [
            m["name"]
            for m in self.machines
            if m["name"] not in wanted or m["state"] != "provisioned" or m["spec"] != wanted[m["name"]]
        ]
        if behind:
            raise InvalidTransitionError(f"machines not upgraded yet: {', '.join(behind)}")
        self._upgraded(
            from_version=self.upgrade["from_version"], to_version=self._to_version(), actor=actor, reason=None
        )

    @event("Upgraded", topic="stagekeeper:Deployment.Upgraded")
    def _upgraded(self, from_version: int, to_version: int, actor: str, reason: str | None) -> None:
        assert self.upgrade is not None
        self.configuration_version = to_version
        self.networks = list(self.upgrade["networks"])
        order = [m["name"] for m in self.upgrade["machines"]]
        self.machines.sort(key=lambda m: order.index(m["name"]))
        self.upgrade = None
        self.state = DEPLOYED

    def unbuilt_machines(self) -> list[dict[str, Any]]:
        """Machines the upgrade added that have no VM yet (dropped if the upgrade fails)."""
        return [m for m in self.machines if m["state"] != "provisioned"]

    def record_upgrade_failure(self, reason: str, actor: str) -> None:
        """vCenter refused a step: the deployment stays deployed as it now is (each step done is
        recorded), at its old version; machines added without a VM are dropped."""
        self._require((UPGRADING,), "fail the upgrade of")
        dropped = [m["name"] for m in self.unbuilt_machines()]
        self._upgrade_failed(to_version=self._to_version(), dropped=dropped, actor=actor, reason=reason)

    @event("UpgradeFailed", topic="stagekeeper:Deployment.UpgradeFailed")
    def _upgrade_failed(self, to_version: int, dropped: list[str], actor: str, reason: str | None) -> None:
        self.machines = [m for m in self.machines if m["name"] not in dropped]
        self.upgrade = None
        self.failure = reason
        self.state = DEPLOYED

    def _to_version(self) -> int:
        assert self.upgrade is not None
        return int(self.upgrade["to_version"])

    def request_deployment_power(self, action: str, actor: str, reason: str | None) -> list[str]:
        """Power every machine on (in start order) or off (in reverse order); each machine's change
        is recorded as MachinePowerChanged or PowerFailed. Returns the machines it concerns."""
        if action not in ("on", "off"):
            raise ValidationError("action must be one of on, off", field="action")
        self._require((DEPLOYED,), f"power {action}")
        if action == "on":
            self._check_replaced("power on", "action")
        busy = [m["name"] for m in self.machines if m.get("power_pending")]
        if busy:
            raise InvalidTransitionError(f"machines have power actions still pending: {', '.join(busy)}")
        on = action == "on"
        names = [m["name"] for m in self.machines if m.get("vm_id") and (m.get("power") == POWERED_ON) != on]
        if not names:
            raise InvalidTransitionError(f"every machine is already powered {action}")
        self._deployment_power_requested(action=action, machines=names, actor=actor, reason=reason)
        return names

    @event("DeploymentPowerRequested", topic="stagekeeper:Deployment.DeploymentPowerRequested")
    def _deployment_power_requested(self, action: str, machines: list[str], actor: str, reason: str | None) -> None:
        for name in machines:
            found = self.machine(name)
            found["power_pending"] = [*found.get("power_pending", []), action]

    # -- placement across hosts: domain/placement.py chooses, the process manager records --------
    # A rebalance being carried out ({"moves": [...], "done": [machines]}); a class default, so
    # deployments from before placement existed read as None.
    rebalance_work: dict[str, Any] | None = None

    def record_placement(self, machine: str, choice: dict[str, Any], actor: str) -> None:
        """Where a machine goes, and why, recorded before its clone (once: a retry keeps it)."""
        if self.machine(machine).get("placement") is None:
            self._machine_placed(machine=machine, **choice, actor=actor)

    @event("MachinePlaced", topic="stagekeeper:Deployment.MachinePlaced")
    def _machine_placed(
        self, machine: str, cluster: str, resource_pool: str, host: str, datastore: str, actor: str, reason: str
    ) -> None:
        self.machine(machine)["placement"] = {
            "cluster": cluster, "resource_pool": resource_pool, "host": host, "datastore": datastore, "reason": reason,
        }  # fmt: skip

    def request_rebalance(self, moves: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        self._require((DEPLOYED,), "rebalance")
        if self.rebalance_work is not None:
            raise ConflictError("a rebalance of this deployment is still running", field="dry_run")
        self._check_no_snapshot_work("dry_run")
        self._rebalance_requested(moves=moves, actor=actor, reason=reason)

    @event("RebalanceRequested", topic="stagekeeper:Deployment.RebalanceRequested")
    def _rebalance_requested(self, moves: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        self.rebalance_work = {"moves": list(moves), "done": []}

    def record_machine_relocated(self, machine: str, host: str, datastore: str | None, actor: str) -> None:
        work = self.rebalance_work
        if work is None or machine in work["done"]:
            return
        move = next(m for m in work["moves"] if m["machine"] == machine)
        self._machine_relocated(
            machine=machine, from_host=move["from_host"], host=host, datastore=datastore, actor=actor,
            reason=move["reason"],
        )  # fmt: skip

    @event("MachineRelocated", topic="stagekeeper:Deployment.MachineRelocated")
    def _machine_relocated(
        self, machine: str, from_host: str, host: str, datastore: str | None, actor: str, reason: str | None
    ) -> None:
        found = self.machine(machine)
        placement = dict(found.get("placement") or {"cluster": None, "resource_pool": found["resource_pool"]})
        placement.update(host=host, reason=reason, datastore=datastore or placement.get("datastore"))
        found["placement"] = placement
        if self.rebalance_work is not None:
            self.rebalance_work = {**self.rebalance_work, "done": [*self.rebalance_work["done"], machine]}

    def end_rebalance(self, failure: str | None, actor: str) -> None:
        if self.rebalance_work is not None:
            moved = len(self.rebalance_work["done"])
            self._rebalance_ended(moved=moved, failed=failure is not None, actor=actor, reason=failure)

    @event("RebalanceEnded", topic="stagekeeper:Deployment.RebalanceEnded")
    def _rebalance_ended(self, moved: int, failed: bool, actor: str, reason: str | None) -> None:
        self.rebalance_work = None

    # -- drift and verification (logic in domain/drift.py, domain/drift_state.py, domain/verification.py) --
    # Open differences between vCenter and this history: "machine.field" -> {machine, field,
    # expected, actual, reverting}. Class defaults keep older deployments readable.
    drift: dict[str, dict[str, Any]] | None = None
    verification: dict[str, Any] | None = None

    @event("DriftDetected", topic="stagekeeper:Deployment.DriftDetected")
    def _drift_detected(
        self, machine: str, field: str, expected: Any, actual: Any, actor: str, reason: str | None
    ) -> None:
        self.drift = drift_state.detected(self.drift, machine, field, expected, actual)

    @event("DriftResolved", topic="stagekeeper:Deployment.DriftResolved")
    def _drift_resolved(self, machine: str, field: str, actual: Any, actor: str, reason: str | None) -> None:
        self.drift = drift_state.resolved(self.drift, machine, field)

    @event("DriftAdopted", topic="stagekeeper:Deployment.DriftAdopted")
    def _drift_adopted(
        self, machine: str, field: str, value: Any, configuration_version: int, actor: str, reason: str | None
    ) -> None:
        drift_state.adopt(self, machine, field, value, configuration_version)

    @event("DriftRevertRequested", topic="stagekeeper:Deployment.DriftRevertRequested")
    def _drift_revert_requested(self, machine: str, field: str, expected: Any, actor: str, reason: str | None) -> None:
        self.drift = drift_state.reverting(self.drift, machine, field, True)

    @event("DriftReverted", topic="stagekeeper:Deployment.DriftReverted")
    def _drift_reverted(self, machine: str, field: str, failed: bool, actor: str, reason: str | None) -> None:
        self.drift = drift_state.reverted(self.drift, machine, field, failed, reason)

    @event("VerificationStarted", topic="stagekeeper:Deployment.VerificationStarted")
    def _verification_started(
        self, after: str, for_version: int, checks: list[dict[str, Any]], deadline: str, rollback: bool, actor: str,
        reason: str | None,
    ) -> None:  # fmt: skip
        self.verification = drift_state.verification_started(after, for_version, self.stage, checks, deadline, rollback)

    @event("VerificationPassed", topic="stagekeeper:Deployment.VerificationPassed")
    def _verification_passed(self, results: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        self.verification = drift_state.verification_ended(self.verification, "passed", results, None)

    @event("VerificationFailed", topic="stagekeeper:Deployment.VerificationFailed")
    def _verification_failed(
        self, results: list[dict[str, Any]], rollback: str | None, actor: str, reason: str | None
    ) -> None:
        self.verification = drift_state.verification_ended(self.verification, "failed", results, rollback)

    # -- leases (the rules: domain/leases.py) ------------------------------------------------------
    # {"expires_at", "keep", "warned_for", "idle_warned_for", "expired_for", "reaped_for", "expired"};
    # a class default: deployments made before leases have none.
    lease: dict[str, Any] | None = None

    @event("LeaseSet", topic="stagekeeper:Deployment.LeaseSet")
    def _lease_set(self, expires_at: str | None, lease: str | None, actor: str, reason: str | None) -> None:
        self.lease = leases.applied_set(self.lease, expires_at)

    @event("LeaseExtended", topic="stagekeeper:Deployment.LeaseExtended")
    def _lease_extended(self, before: str | None, expires_at: str, actor: str, reason: str | None) -> None:
        self.lease = leases.applied_set(self.lease, expires_at)

    @event("KeepChanged", topic="stagekeeper:Deployment.KeepChanged")
    def _keep_changed(self, keep: bool, actor: str, reason: str | None) -> None:
        self.lease = leases.applied_keep(self.lease, keep)

    @event("LeaseExpiring", topic="stagekeeper:Deployment.LeaseExpiring")
    def _lease_expiring(self, kind: str, at: str, stage: str, actor: str, reason: str | None) -> None:
        self.lease = leases.applied_expiring(self.lease, kind, at)

    @event("LeaseExpired", topic="stagekeeper:Deployment.LeaseExpired")
    def _lease_expired(self, kind: str, policy: str, at: str, actor: str, reason: str | None) -> None:
        self.lease = leases.applied_expired(self.lease, kind, policy, at)


def _placement_view(machine: dict[str, Any]) -> dict[str, Any] | None:
    placement = machine.get("placement")
    if placement is None or machine["resource_pool"] not in (None, placement["resource_pool"]):
        return None  # moved to another stage since: where it went is its resource_pool
    return dict(placement)


def _new_machine(spec: dict[str, Any]) -> dict[str, Any]:
    """A machine entry with no VM yet (the same shape Requested gives its machines)."""
    return {
        "name": spec["name"], "spec": spec, "state": "pending", "vm_name": None, "vm_id": None, "ip": None,
        "mac": None, "resource_pool": None, "power": None, "power_pending": [],
    }  # fmt: skip
