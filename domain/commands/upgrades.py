"""Upgrade in place and whole-deployment power: the user commands, and the upgrade steps the
process manager records that claim or release addresses in the same write as the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain import governance, linkedcopies, quotas
from domain.addressing import candidate_macs
from domain.application import Outcome, StagekeeperApplication
from domain.commands import fencing
from domain.commands.addresses import IP_CLAIMS, IPV4_SCOPE, MAC_CLAIMS, AddressCommands, ip_releases
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.errors import AddressExhaustedError, InvalidTransitionError, ValidationError
from domain.names import NameClaim
from domain.service import Service
from domain.text import check_reason
from domain.values import check_version_number

# What an upgrade can change on a machine that stays without rebuilding its VM; a change of
# anything else (template, clone mode, customisation) destroys the VM and builds it anew.
IN_PLACE = ("cpus", "memory_mib", "disks", "nics", "start_order")


def rebuild_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The fields of a kept machine that an in-place upgrade cannot change."""
    keys = (set(before) | set(after)) - set(IN_PLACE) - {"name"}
    return sorted(k for k in keys if before.get(k) != after.get(k))


def _loses_disk(before: dict[str, Any], after: dict[str, Any]) -> bool:
    old = [d["size_gib"] for d in before.get("disks", [])]
    new = [d["size_gib"] for d in after.get("disks", [])]
    return len(new) < len(old) or any(n < o for o, n in zip(old, new, strict=False))


class UpgradeCommands(StagekeeperApplication):
    def upgrade_deployment(
        self,
        deployment_id: UUID,
        version: object,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Deployment]:
        """Bring a deployed deployment to another version of its configuration, in place: machines
        added, removed, resized (CPU, memory, disks) and rewired (NICs); only the differences."""
        reason = check_reason(reason)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValidationError("version must be an integer", field="version")

        governance.admit(self, "upgrade", deployment_id, actor, reason, version=version)

        def attempt() -> Outcome[Deployment]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            self.check_version(deployment, expected_version, "deployment")
            latest = self.load(Configuration, deployment.configuration_id, "configuration")
            latest.check_active()
            check_version_number(version, latest.version, "version")
            target = self.load(Configuration, deployment.configuration_id, "configuration", version=version)
            if not target.machines:
                raise InvalidTransitionError(f"version {version} of '{target.name}' has no machines")
            service = self.load(Service, deployment.service_id, "service")
            if service.stage(deployment.stage).get("restricted") and not (reason or "").strip():
                raise ValidationError(
                    f"stage '{deployment.stage}' is restricted: an upgrade there needs a reason", field="reason"
                )
            destroyed: list[str] = []
            for machine in deployment.machines:
                after = next((m for m in target.machines if m["name"] == machine["name"]), None)
                in_place = after is not None and not rebuild_fields(machine["spec"], after)
                if not in_place:
                    destroyed.append(machine["name"])
                if in_place and after is not None and _loses_disk(machine["spec"], after):
                    raise InvalidTransitionError(
                        f"machine '{machine['name']}' would lose or shrink a disk: disks only grow or are added "
                        "in place (vSphere cannot shrink a disk); remove the machine in one version instead"
                    )
            if destroyed:
                linkedcopies.check_destroyable(self.repository, deployment, destroyed)
            quotas.check(self.repository, service, deployment.stage, target.machines, deployment.id)
            deployment.request_upgrade(version, target.networks, target.machines, actor, reason)
            service.admit_upgrade(deployment.id, deployment.stage, version, actor, reason)
            return Outcome(deployment, self.commit(deployment, service))

        return self.retrying(attempt)

    def power_deployment(
        self, deployment_id: UUID, action: object, actor: str, reason: str | None = None
    ) -> Outcome[Deployment]:
        """Power every machine of a deployed deployment on (in start order) or off (in reverse)."""
        reason = check_reason(reason)
        governance.admit(self, "power", deployment_id, actor, reason)
        name = action if isinstance(action, str) else ""

        def attempt() -> Outcome[Deployment]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            deployment.request_deployment_power(name, actor, reason)
            return Outcome(deployment, self.commit(deployment))

        return self.retrying(attempt)

    # -- steps of the upgrade process (addresses claimed or released in the same write) ---------
    def record_upgrade_nics(self, deployment_id: UUID, machine: str, actor: str) -> list[dict[str, Any]]:
        """Give the machine the target version's NICs: a NIC on the same network at the same place
        keeps its MAC, others get a new claimed MAC, MACs of NICs that go are released."""

        def attempt() -> Outcome[list[dict[str, Any]]]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            target = deployment.upgrade_target(machine)
            assert target is not None
            old = list((deployment.machine(machine).get("addressing") or {}).get("macs", []))
            owner = uuid5(deployment_id, machine)
            claims: list[Aggregate] = []
            taken: set[tuple[str, str, str]] = set()
            addresses = cast(AddressCommands, self)  # the composed application has both
            macs: list[dict[str, Any]] = []
            fenced = deployment.fence is not None
            used = {n["mac"] for m in deployment.machines for n in (m.get("addressing") or {}).get("macs", [])}
            for index, nic in enumerate(target["nics"]):
                if index < len(old) and old[index]["network"] == nic["network"]:
                    macs.append(old[index])
                    continue
                if fenced:
                    # Inside a fence MACs are the configuration's own (the same in every copy), unclaimed.
                    seed = f"{deployment.configuration_id}/{machine}/{index}"
                    mac = next(m for m in candidate_macs(seed, limit=4096) if m not in used)
                    used.add(mac)
                    macs.append({"network": nic["network"], "mac": mac})
                    continue
                claim = next(
                    (
                        c
                        for mac in candidate_macs(f"{deployment_id}/{machine}/{index}")
                        if (c := addresses._try_claim(MAC_CLAIMS, nic["network"], mac, owner, taken)) is not None
                    ),
                    None,
                )
                if claim is None:
                    raise AddressExhaustedError(f"no free MAC found for {machine} on network '{nic['network']}'")
                claims.append(claim)
                macs.append({"network": nic["network"], "mac": claim.name})
            kept = {(m["network"], m["mac"]) for m in macs}
            for nic in old:
                if (nic["network"], nic["mac"]) not in kept:
                    claims.extend(filter(None, [self._release_held(MAC_CLAIMS, nic["network"], nic["mac"], owner)]))
            deployment.record_nics_changed(machine, macs, actor)
            return Outcome(macs, self.commit(deployment, *claims))

        return self.retrying(attempt).value

    def record_upgrade_removal(self, deployment_id: UUID, machine: str, actor: str) -> None:
        """The machine's VM is gone: drop the machine and release its addresses (in a fence, its NAT
        entry and external address too), in one write."""
        self._with_releases(deployment_id, lambda d: d.record_machine_removed(machine, actor), [machine], actor)

    def record_upgrade_rebuild(self, deployment_id: UUID, machine: str, changed: list[str], actor: str) -> None:
        """The machine's VM is gone to be built anew: its addresses are released in the same write
        (and claimed again, the same ones when still free, before its new VM is cloned)."""
        self._with_releases(deployment_id, lambda d: d.record_machine_rebuilding(machine, changed, actor), [machine])

    def record_upgrade_failed(self, deployment_id: UUID, failure: str, actor: str) -> None:
        """Record vCenter's refusal; the addresses of added machines that never got a VM are released."""

        def step(deployment: Deployment) -> None:
            deployment.record_upgrade_failure(failure, actor)

        deployment = self.load(Deployment, deployment_id, "deployment")
        dropped = [m["name"] for m in deployment.unbuilt_machines()]
        self._with_releases(deployment_id, step, dropped, actor)

    def _release_held(self, kind: str, scope: str, name: str, owner: UUID) -> NameClaim | None:
        try:
            claim: Aggregate = self.repository.get(NameClaim.id_for(kind, scope, name))
        except AggregateNotFoundError:
            return None
        if not isinstance(claim, NameClaim) or claim.owner_id != owner:
            return None
        claim.release()
        return claim

    # -- NAT entries of machines an upgrade adds to or removes from a fence --------------------
    def record_upgrade_nat(self, deployment_id: UUID, actor: str) -> None:
        """Each machine with an internal IP that the fence's NAT map lacks (one an upgrade adds) gets
        an external address of the stage's pools, claimed in the same write as FenceNatAdded (idempotent)."""

        def attempt() -> Outcome[None]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            fence = deployment.fence
            assert fence is not None
            service = self.load(Service, deployment.service_id, "service")
            stage = service.stage(deployment.stage)
            mapped = {n["machine"] for n in fence["nat"]}
            taken: set[tuple[str, str, str]] = set()
            addresses = cast(AddressCommands, self)

            def claim(kind: str, scope: str, name: str, owner: UUID) -> NameClaim | None:
                return addresses._try_claim(kind, scope, name, owner, taken)

            claims: list[Aggregate] = []
            for machine in deployment.machines:
                internal = (machine.get("addressing") or {}).get("ip")
                if machine["name"] in mapped or not internal:
                    continue
                held = fencing.claim_external(deployment_id, stage, machine["name"], claim)
                if held is None:
                    continue  # no pools: nothing is mapped (as on deploy)
                claims.append(held)
                deployment.record_fence_nat_added(machine["name"], internal, held.name, actor)
            if not claims:
                return Outcome(None, 0)
            return Outcome(None, self.commit(deployment, *claims))

        self.retrying(attempt)

    def _nat_release(self, deployment: Deployment, machine: str, actor: str) -> list[Aggregate]:
        """Drop the machine's NAT entry and release its external address (same write as the caller's)."""
        fence = deployment.fence
        entry = next((n for n in fence["nat"] if n["machine"] == machine), None) if fence is not None else None
        if entry is None:
            return []
        deployment.record_fence_nat_removed(machine, actor)
        owner = fencing.external_owner(deployment.id, machine)
        return list(filter(None, [self._release_held(IP_CLAIMS, IPV4_SCOPE, entry["external_ip"], owner)]))

    # -- fenced networks an upgrade adds or drops (VLAN claimed / released in the same write) --
    def record_fence_network_added(self, deployment_id: UUID, network: str, actor: str) -> dict[str, Any]:
        """Give the upgrading fenced deployment a port group and VLAN for `network` (idempotent)."""

        def attempt() -> Outcome[dict[str, Any]]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            assert deployment.fence is not None
            known = next((n for n in deployment.fence["networks"] if n["network"] == network), None)
            if known is not None:
                return Outcome(known, 0)
            taken: set[tuple[str, str, str]] = set()
            addresses = cast(AddressCommands, self)

            def claim(kind: str, scope: str, name: str, owner: UUID) -> NameClaim | None:
                return addresses._try_claim(kind, scope, name, owner, taken)

            entry, held = fencing.claim_network(deployment, network, claim)
            deployment.record_fence_network_added(network, entry["portgroup"], entry["vlan"], actor)
            return Outcome({**entry, "created": False}, self.commit(deployment, held))

        return self.retrying(attempt).value

    def record_fence_network_removed(self, deployment_id: UUID, network: str, actor: str) -> None:
        """The dropped network's port group is gone: forget it and release its VLAN, in one write."""

        def attempt() -> Outcome[None]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            assert deployment.fence is not None
            found = next((n for n in deployment.fence["networks"] if n["network"] == network), None)
            if found is None:
                return Outcome(None, 0)
            owner = fencing.vlan_owner(deployment_id, network)
            released = self._release_held(fencing.VLAN_CLAIMS, deployment.fence["dvswitch"], str(found["vlan"]), owner)
            deployment.record_fence_network_removed(network, actor)
            return Outcome(None, self.commit(deployment, *filter(None, [released])))

        self.retrying(attempt)

    def _with_releases(
        self, deployment_id: UUID, step: Callable[[Deployment], None], machines: list[str], unmap_by: str | None = None
    ) -> None:
        """`step` with the addresses of `machines` released, all in one write; with `unmap_by` (the
        actor), the machines leave the deployment: in a fence their NAT entries go too."""

        def attempt() -> Outcome[None]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            held = {m["name"]: m.get("addressing") or {} for m in deployment.machines if m["name"] in machines}
            released: list[Aggregate] = []
            if unmap_by is not None:
                for name in machines:
                    released.extend(self._nat_release(deployment, name, unmap_by))
            step(deployment)
            for name, addressing in held.items():
                if addressing.get("ip"):
                    released.extend(ip_releases(self, uuid5(deployment_id, name), addressing))
                owner = uuid5(deployment_id, name)
                for nic in addressing.get("macs", []):
                    # Only a claim this machine holds: a fenced copy's MACs are its source's.
                    released.extend(filter(None, [self._release_held(MAC_CLAIMS, nic["network"], nic["mac"], owner)]))
            return Outcome(None, self.commit(deployment, *released))

        self.retrying(attempt)
