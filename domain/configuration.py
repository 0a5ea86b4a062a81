"""The Configuration aggregate: a versioned multi-machine definition of a service.

Every command records exactly one event, so the aggregate version is the configuration
version a user sees, and any earlier version can be read back from the event store.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.diff import diff_definitions
from domain.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from domain.values import Machine, Network, normalise_key


def check_definition(networks: list[Network], machines: list[Machine]) -> None:
    """Whole-definition rules: unique network and machine names, NICs on declared networks."""
    seen_networks: set[str] = set()
    for i, network in enumerate(networks):
        key = normalise_key(network.name)
        if key in seen_networks:
            raise ValidationError(f"network '{network.name}' is declared twice", field=f"networks[{i}].name")
        seen_networks.add(key)
    seen_machines: set[str] = set()
    for i, machine in enumerate(machines):
        key = normalise_key(machine.name)
        if key in seen_machines:
            raise ValidationError(f"machine '{machine.name}' is declared twice", field=f"machines[{i}].name")
        seen_machines.add(key)
        for j, nic in enumerate(machine.nics):
            if normalise_key(nic) not in seen_networks:
                raise ValidationError(
                    f"machine '{machine.name}' has a NIC on '{nic}', which is not one of the configuration's networks",
                    field=f"machines[{i}].nics[{j}].network",
                )


class Configuration(Aggregate):
    TOPIC = "stagekeeper:Configuration"
    # A class default, so configurations (and snapshots) from before retirement existed read as active.
    retired = False

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Configuration.Created"

    @event("Defined", topic="stagekeeper:Configuration.Defined")
    def __init__(
        self,
        service_id: UUID,
        name: str,
        description: str,
        networks: list[dict[str, Any]],
        machines: list[dict[str, Any]],
        actor: str,
        reason: str | None,
    ) -> None:
        self.service_id = service_id
        self.name = name
        self.description = description
        self.networks: list[dict[str, Any]] = list(networks)
        self.machines: list[dict[str, Any]] = list(machines)

    # -- queries ---------------------------------------------------------------------------
    def machine(self, name: str) -> dict[str, Any]:
        for machine in self.machines:
            if normalise_key(machine["name"]) == normalise_key(name):
                return machine
        raise NotFoundError(f"configuration '{self.name}' has no machine '{name}'", field="machine")

    def network(self, name: str) -> dict[str, Any]:
        for network in self.networks:
            if normalise_key(network["name"]) == normalise_key(name):
                return network
        raise NotFoundError(f"configuration '{self.name}' has no network '{name}'", field="network")

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "networks": self.networks,
            "machines": self.machines,
        }

    def _check(self, networks: list[dict[str, Any]], machines: list[dict[str, Any]]) -> None:
        check_definition([Network.parse(n) for n in networks], [Machine.from_dict(m) for m in machines])

    def check_active(self) -> None:
        """A retired configuration stays readable but takes no deploy and no change."""
        if self.retired:
            raise InvalidTransitionError(f"configuration '{self.name}' is retired", field="configuration_id")

    # -- commands --------------------------------------------------------------------------
    def retire(self, live: list[str], actor: str, reason: str) -> None:
        """Retire, refused while `live` (descriptions of its live deployments) is not empty."""
        self.check_active()
        if live:
            raise ConflictError(
                f"configuration '{self.name}' has {len(live)} live deployment(s): {', '.join(live)}; "
                "undeploy them first",
                field="configuration_id",
            )
        self._retired(name=self.name, actor=actor, reason=reason)

    @event("Retired", topic="stagekeeper:Configuration.Retired")
    def _retired(self, name: str, actor: str, reason: str) -> None:
        self.retired = True

    def rename(self, name: str, actor: str, reason: str | None) -> None:
        if name != self.name:
            self._renamed(before=self.name, name=name, actor=actor, reason=reason)

    @event("Renamed", topic="stagekeeper:Configuration.Renamed")
    def _renamed(self, before: str, name: str, actor: str, reason: str | None) -> None:
        self.name = name

    def revise(
        self,
        description: str | None,
        networks: list[Network] | None,
        machines: list[Machine] | None,
        actor: str,
        reason: str | None,
    ) -> bool:
        """Replace any of description / networks / machines in one version. False if nothing changed."""
        new_networks = [n.to_dict() for n in networks] if networks is not None else self.networks
        new_machines = [self.keep_captured(m.to_dict()) for m in machines] if machines is not None else self.machines
        new_description = description if description is not None else self.description
        check_definition([Network.parse(n) for n in new_networks], [Machine.from_dict(m) for m in new_machines])
        if (new_description, new_networks, new_machines) == (
            self.description,
            self.networks,
            self.machines,
        ):
            return False
        after = {**self.definition(), "description": new_description}
        after.update(networks=new_networks, machines=new_machines)
        self._revised(
            description=new_description,
            networks=new_networks,
            machines=new_machines,
            changes=diff_definitions(self.definition(), after),
            actor=actor,
            reason=reason,
        )
        return True

    @event("Revised", topic="stagekeeper:Configuration.Revised")
    def _revised(
        self,
        description: str,
        networks: list[dict[str, Any]],
        machines: list[dict[str, Any]],
        changes: dict[str, Any],
        actor: str,
        reason: str | None,
    ) -> None:
        self.description = description
        self.networks = list(networks)
        self.machines = list(machines)

    def add_network(self, network: Network, actor: str, reason: str | None) -> None:
        if any(normalise_key(n["name"]) == normalise_key(network.name) for n in self.networks):
            raise ConflictError(f"configuration '{self.name}' already has a network '{network.name}'", field="name")
        self._network_added(network=network.to_dict(), actor=actor, reason=reason)

    @event("NetworkAdded", topic="stagekeeper:Configuration.NetworkAdded")
    def _network_added(self, network: dict[str, Any], actor: str, reason: str | None) -> None:
        self.networks.append(network)

    def remove_network(self, name: str, actor: str, reason: str | None) -> None:
        network = self.network(name)
        users = [
            m["name"]
            for m in self.machines
            if any(normalise_key(n["network"]) == normalise_key(name) for n in m["nics"])
        ]
        if users:
            raise ConflictError(
                f"network '{network['name']}' is used by machine(s) {', '.join(users)}; detach them first",
                field="network",
            )
        self._network_removed(network=network["name"], actor=actor, reason=reason)

    @event("NetworkRemoved", topic="stagekeeper:Configuration.NetworkRemoved")
    def _network_removed(self, network: str, actor: str, reason: str | None) -> None:
        self.networks = [n for n in self.networks if n["name"] != network]

    def add_machine(self, machine: Machine, actor: str, reason: str | None) -> None:
        if any(normalise_key(m["name"]) == normalise_key(machine.name) for m in self.machines):
            raise ConflictError(f"configuration '{self.name}' already has a machine '{machine.name}'", field="name")
        self._check(self.networks, [*self.machines, machine.to_dict()])
        self._machine_added(machine=machine.to_dict(), actor=actor, reason=reason)

    @event("MachineAdded", topic="stagekeeper:Configuration.MachineAdded")
    def _machine_added(self, machine: dict[str, Any], actor: str, reason: str | None) -> None:
        self.machines.append(machine)

    def change_machine(self, name: str, machine: Machine, actor: str, reason: str | None) -> None:
        current = self.machine(name)
        if normalise_key(machine.name) != normalise_key(current["name"]) and any(
            normalise_key(m["name"]) == normalise_key(machine.name) for m in self.machines
        ):
            raise ConflictError(f"configuration '{self.name}' already has a machine '{machine.name}'", field="name")
        changed = self.keep_captured(machine.to_dict())
        replaced = [changed if m is current else m for m in self.machines]
        self._check(self.networks, replaced)
        if changed != current:
            self._machine_changed(
                machine_name=current["name"],
                before=current,
                machine=changed,
                actor=actor,
                reason=reason,
            )

    @event("MachineChanged", topic="stagekeeper:Configuration.MachineChanged")
    def _machine_changed(
        self,
        machine_name: str,
        before: dict[str, Any],
        machine: dict[str, Any],
        actor: str,
        reason: str | None,
    ) -> None:
        self.machines = [machine if m["name"] == machine_name else m for m in self.machines]

    def remove_machine(self, name: str, actor: str, reason: str | None) -> None:
        machine = self.machine(name)
        self._machine_removed(machine_name=machine["name"], before=machine, actor=actor, reason=reason)

    @event("MachineRemoved", topic="stagekeeper:Configuration.MachineRemoved")
    def _machine_removed(self, machine_name: str, before: dict[str, Any], actor: str, reason: str | None) -> None:
        self.machines = [m for m in self.machines if m["name"] != machine_name]

    def restore(self, source_version: int, definition: dict[str, Any], actor: str, reason: str | None) -> None:
        """Become what version `source_version` was, as a new version; history is never rewritten."""
        self._restored(
            source_version=source_version,
            changes=diff_definitions(self.definition(), definition),
            name=definition["name"],
            description=definition["description"],
            networks=definition["networks"],
            machines=definition["machines"],
            actor=actor,
            reason=reason,
        )

    @event("Restored", topic="stagekeeper:Configuration.Restored")
    def _restored(
        self,
        source_version: int,
        changes: dict[str, Any],
        name: str,
        description: str,
        networks: list[dict[str, Any]],
        machines: list[dict[str, Any]],
        actor: str,
        reason: str | None,
    ) -> None:
        self.name = name
        self.description = description
        self.networks = list(networks)
        self.machines = list(machines)

    # -- capture (domain/capture.py) ---------------------------------------------------------
    def captured_source(self, machine: Machine) -> dict[str, Any] | None:
        """What vCenter said of the VM `machine` was captured from, while it still comes from that VM
        (same name, the VM's name as template): such a machine is revised (resized, rewired) in place."""
        for existing in self.machines:
            captured = existing.get("captured")
            if existing["name"] == machine.name and captured and captured.get("vm_name") == machine.template:
                return dict(captured)
        return None

    def keep_captured(self, machine: dict[str, Any]) -> dict[str, Any]:
        captured = self.captured_source(Machine.from_dict(machine))
        return machine if captured is None else {**machine, "captured": captured}

    def record_capture(
        self, networks: list[dict[str, Any]], machines: list[dict[str, Any]], actor: str, reason: str | None
    ) -> None:
        """A new version describing captured VMs (their machines keep what vCenter said in `captured`)."""
        self.check_active()
        self._check(networks, machines)
        after = {**self.definition(), "networks": networks, "machines": machines}
        self._revised(
            description=self.description,
            networks=networks,
            machines=machines,
            changes=diff_definitions(self.definition(), after),
            actor=actor,
            reason=reason,
        )
