"""The deployment process manager: turns deployment events into vCenter work.

It is a reconciler. For any deployment event it loads the deployment and carries it from its
current state to the next resting state (deployed, undeployed, failed), recording each step as
an event. Before acting it asks vCenter what already exists (VMs are tagged with deployment and
machine ids and named deterministically), so a worker killed at any point and started again
finishes the work without duplicating or orphaning a VM. vCenter faults (VCenterFaultError, raised
only by the drivers) and a stage's exhausted IP pools become failure events with their message;
anything else (a domain lookup that fails, a database outage, a bug) propagates, and the follower
retries the event later.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext, suppress
from functools import partial
from typing import Any
from uuid import UUID

from domain.commands.fencing import GATEWAY_MACHINE
from domain.deployment import (
    DEMOTING,
    DEPLOYED,
    PROMOTING,
    PROVISIONING,
    REQUESTED,
    SWAPPING,
    UNDEPLOYING,
    UPGRADING,
    Deployment,
)
from domain.errors import AddressExhaustedError, InfrastructureError, InvalidTransitionError, VCenterFaultError
from domain.placement import PlacementImpossibleError
from domain.ports import CloneSpec, GuestIdentity, NicSetting, VCenterDriver, VmInfo
from domain.processes.capture import tag_captured, undeploy_captured
from domain.processes.drift import DriftSteps
from domain.processes.fencing import FenceSteps, machine_nics
from domain.processes.media import attach_medium, check_media
from domain.processes.placement import PlacementSteps, Prepared
from domain.processes.power import power_deployment, provision_in_order
from domain.processes.snapshots import SnapshotSteps
from domain.processes.swaps import SwapSteps
from domain.processes.upgrade import run_upgrade
from domain.processes.verification import VerificationSteps
from domain.stagekeeper import Stagekeeper
from domain.startorder import has_start_order
from domain.values import PoolPath
from domain.verification import Prober

log = logging.getLogger(__name__)

ACTOR = "stagekeeper"
TOPICS = tuple(
    f"stagekeeper:{name}"
    for name in (
        "Deployment.Requested",
        "Deployment.RetryRequested",
        "Deployment.MoveRequested",
        "Deployment.UndeployRequested",
        "Deployment.PowerRequested",
        "Deployment.Captured",
        "Deployment.LetGoRequested",
        "Deployment.UpgradeRequested",
        "Deployment.DeploymentPowerRequested",
        "Deployment.SnapshotRequested",
        "Deployment.RevertRequested",
        "Deployment.SwapRequested",
        "Deployment.SwappedOut",
        "Deployment.DriftRevertRequested",
        # Verification starts when these complete a promote, copy, swap or upgrade.
        "Deployment.Moved",
        "Deployment.Deployed",
        "Deployment.Swapped",
        "Deployment.Upgraded",
        "Service.Registered",
        "Service.StageAdded",
        "Service.StageMapped",
        "Deployment.RebalanceRequested",
        "Service.StageExtraPoolsChanged",
    )
)
VCENTER_FAULTS = (VCenterFaultError,)
# What fails a provisioning attempt (recorded as ProvisioningFailed) rather than being retried.
PROVISIONING_FAILURES = (VCenterFaultError, AddressExhaustedError, PlacementImpossibleError)
MAX_PASSES = 50
_AT_REST_KEPT = 10_000  # deployments whose version at rest is kept (then forgotten, all at once)
# How long the machines finishing together (a wave of clones) are waited for, once one is done, to go
# into one write: a write's CPU is taken from the clone threads. Never past the last machine.
GATHER_SECONDS = 0.03


def copy_snapshot(deployment_id: UUID) -> str:
    """The snapshot a linked copy is cloned from, taken on each source VM for that copy."""
    return f"sk-copy-{deployment_id.hex[:12]}"


def vm_name(deployment_id: UUID, machine: str) -> str:
    """Deterministic VM name: a retried clone finds the VM an interrupted attempt made."""
    return f"sk-{deployment_id.hex[:12]}-{machine}"


class DeploymentProcess:
    def __init__(
        self, app: Stagekeeper, vcenter: VCenterDriver, parallel_tasks: int = 8, prober: Prober | None = None
    ) -> None:
        self.app = app
        self.vcenter = vcenter
        self.parallel_tasks = parallel_tasks
        self.sleep: Callable[[float], None] = time.sleep  # start-order waits; tests replace it
        # Held while a provisioning pass runs (the runtime pauses the cycle collector with it).
        self.quiet: Callable[[], AbstractContextManager[object]] = nullcontext
        self.fences = FenceSteps(app, vcenter)
        self.snapshot_steps = SnapshotSteps(app, vcenter)
        self.placement = PlacementSteps(app, vcenter)
        self.swaps = SwapSteps(app, vcenter, self.fences, lambda seconds: self.sleep(seconds))
        self.drift = DriftSteps(app, vcenter)
        self.verification = VerificationSteps(app, vcenter, prober)
        # Deployment id -> the version a drive found it at rest on (nothing to do): an event up to
        # that version (one written in the same commit, e.g. a restored deployment's Requested and
        # Captured) comes back without another drive. A restarted process starts empty.
        self._at_rest: dict[UUID, int] = {}

    # -- policy --------------------------------------------------------------------------------
    def handle(self, event: Any) -> None:
        kind = type(event).__qualname__
        if kind in ("Deployment.Moved", "Deployment.Deployed", "Deployment.Swapped", "Deployment.Upgraded"):
            self.verification.after_event(event)
        if kind == "Deployment.Deployed":
            # Written by the pass that built the deployment, last: nothing is left to drive.
            return
        if kind == "Service.Registered":
            self.ensure_pools(event.originator_id, [(s["name"], s["resource_pool"]) for s in event.stages])
        elif kind == "Service.StageAdded":
            self.ensure_pools(event.originator_id, [(event.stage["name"], event.stage["resource_pool"])])
        elif kind == "Service.StageMapped":
            self.ensure_pools(event.originator_id, [(event.stage, event.resource_pool)])
        elif kind == "Service.StageExtraPoolsChanged":
            self.ensure_pools(event.originator_id, [(event.stage, pool) for pool in event.extra_pools])
        elif kind == "Deployment.PowerRequested":
            self.power(event.originator_id, event.machine)
        elif kind == "Deployment.DeploymentPowerRequested":
            power_deployment(self, event.originator_id, event.action)
        elif kind == "Deployment.DriftRevertRequested":
            self.drift.revert(event.originator_id, event.machine, event.field)
        elif isinstance(event, Deployment.Event):
            if event.originator_version <= self._at_rest.get(event.originator_id, 0):
                return  # a drive already found the deployment at rest on a version including it
            self.drive(event.originator_id)

    def ensure_pools(self, service_id: UUID, pools: list[tuple[str, str]]) -> None:
        for stage, path in pools:
            try:
                created = self.vcenter.ensure_pool(path)
            except VCENTER_FAULTS as fault:
                # Not fatal: deploying into the stage ensures the pool again and fails visibly.
                log.warning("could not create resource pool %s for stage %s: %s", path, stage, fault.message)
                continue
            if created:
                self.app.record_pool_created(service_id, stage, path)

    def power(self, deployment_id: UUID, machine: str) -> None:
        """Carry out the machine's oldest pending power action (one per PowerRequested event, so a
        restarted worker that redoes an event finds that action already recorded and does nothing)."""
        deployment = self.app.deployment(deployment_id)
        found = deployment.machine(machine)
        pending = found.get("power_pending") or []
        if not pending:
            return
        action = pending[0]
        try:
            if not found.get("vm_id"):
                raise InvalidTransitionError(f"machine '{machine}' has no VM any more")
            self.vcenter.power(found["vm_id"], action)
            state = self.vcenter.power_state(found["vm_id"])
        except (VCenterFaultError, InvalidTransitionError) as fault:
            failed = partial(
                Deployment.record_power_failure, machine=machine, action=action, reason=fault.message, actor=ACTOR
            )
            self.app.record_step(deployment_id, failed)
            return
        changed = partial(
            Deployment.record_power_changed, machine=machine, action=action, power_state=state, actor=ACTOR
        )
        self.app.record_step(deployment_id, changed)

    # -- reconciliation loop ---------------------------------------------------------------------
    def drive(self, deployment_id: UUID) -> None:
        """Carry the deployment to its next resting state, from whatever state it is in."""
        self._drive(deployment_id, together=True)

    def _drive_copies(self, deployment: Deployment) -> None:
        """A requested copy is built together with the other copies of its source still waiting
        (each is idempotent, and the later events of those copies then find them built), so
        copies requested at once are built at once."""
        assert deployment.copy_of is not None
        source = self.app.deployment(UUID(deployment.copy_of["deployment_id"]))
        waiting = [deployment.id] + [
            UUID(c) for c in source.copies if c != str(deployment.id) and self._waiting(UUID(c))
        ]
        # At most parallel_tasks copies at once (each with its own parallel_tasks vCenter tasks).
        with ThreadPoolExecutor(min(len(waiting), self.parallel_tasks), thread_name_prefix="sk-copy") as pool:
            for _ in pool.map(self._drive, waiting):
                pass

    def _waiting(self, deployment_id: UUID) -> bool:
        return self.app.deployment(deployment_id).state in (REQUESTED, PROVISIONING)

    def _drive(self, deployment_id: UUID, together: bool = False) -> None:
        # Each pass makes progress or meets a state changed by a user; a deployment that keeps
        # refusing the same step is a bug, raised (and retried with backoff) rather than spun on.
        for _ in range(MAX_PASSES):
            deployment = self.app.deployment(deployment_id)
            try:
                if deployment.untagged_machines():  # captured VMs: tagged before anything else
                    tag_captured(self, deployment, ACTOR)
                    continue
                if deployment.snapshot_work is not None:
                    self.snapshot_steps.carry_out(deployment)
                    continue
                if deployment.rebalance_work is not None:
                    self.placement.rebalance(deployment)
                    continue
                if deployment.state == REQUESTED and together and deployment.copy_of is not None:
                    self._drive_copies(deployment)
                    return
                if deployment.state in (REQUESTED, PROVISIONING):
                    # A requested deployment starts provisioning in its addresses' write.
                    with self.quiet():
                        written = self._provision(deployment)
                    if written is not None and written.state == DEPLOYED:
                        # At rest as this pass left it; a later change of it (an undeploy, a
                        # snapshot) comes with an event of its own, handled then.
                        return
                elif deployment.state in (PROMOTING, DEMOTING):
                    self._move(deployment)
                elif deployment.state == UNDEPLOYING:
                    self._undeploy(deployment)
                elif deployment.state == UPGRADING:
                    run_upgrade(self, deployment)
                elif deployment.state == SWAPPING:
                    self.swaps.carry_out(deployment)
                    return
                else:
                    if len(self._at_rest) >= _AT_REST_KEPT:
                        self._at_rest.clear()
                    self._at_rest[deployment.id] = deployment.version
                    return
            except InvalidTransitionError:
                # A user command (e.g. undeploy) changed the state under us: re-read and go on.
                continue
        raise RuntimeError(f"deployment {deployment_id} made no progress in {MAX_PASSES} passes")

    def _provision(self, deployment: Deployment) -> Deployment | None:
        """Build what is missing; the deployment as this pass last wrote it (None: not known)."""
        try:
            # vCenter's side (the stage's pool, the inventory placement chooses from, and its
            # choices) is read while the addresses are decided: neither waits for the other. What
            # is decided before the first clone is one write: provisioning started (a requested
            # deployment), the addresses, and where the machines go (MachinePlaced).
            machines = [dict(m) for m in deployment.machines]  # as they are now: `deployment` changes
            first: list[bool] = []  # whether the write that started provisioning started the first attempt
            with ThreadPoolExecutor(1, thread_name_prefix="sk-prepare") as early:
                prepared = early.submit(self._prepare_vcenter, deployment, machines)
                start = partial(self._start, first=first) if deployment.state == REQUESTED else None
                deployment = self.app.assign_addresses(
                    deployment.id, ACTOR, in_hand=deployment, before=start,
                    after=lambda d: self.placement.record_choices(d, prepared.result()),
                )  # fmt: skip
                clusters = prepared.result()
            # This pass's own write started the deployment's first attempt: no clone of it was ever
            # begun (clones start only after that write), so none of its VMs can exist yet.
            fresh = first == [True]
            # Nothing left to place, unless the machines to place changed since they were chosen.
            deployment = self.placement.place_pending(deployment, clusters)
            if deployment.copy_of is not None and deployment.copy_of["linked"]:
                self._snapshot_sources(deployment)
            pending = [m for m in deployment.machines if m["state"] != "provisioned"]
            check_media(self.app, self.vcenter, pending)  # before any clone
            with ThreadPoolExecutor(self.parallel_tasks, thread_name_prefix="sk-clone") as pool:
                if deployment.fence is not None:
                    # Port groups first: the machines' NICs go on them.
                    self.fences.build_networks(deployment, pool)
                    deployment = self.app.deployment(deployment.id)
                if has_start_order(m["spec"] for m in deployment.machines):
                    pending = provision_in_order(self, deployment, pending)
                futures: dict[Future[VmInfo], str] = {
                    pool.submit(self._provision_machine, deployment, m, fresh=fresh): m["name"] for m in pending
                }
                if self.fences.gateway_pending(deployment):
                    # The gateway is cloned beside the machines (it needs only the port groups).
                    futures[pool.submit(self.fences.build_gateway, deployment)] = GATEWAY_MACHINE
                try:
                    held = self._record_provisioned(deployment, futures)
                finally:
                    for future in futures:
                        future.cancel()
        except PROVISIONING_FAILURES as fault:
            self._fail(deployment.id, fault.message)
            return None
        if held is None or held.state == PROVISIONING:
            held = self.app.record_step(deployment.id, lambda d: d.mark_deployed(ACTOR), in_hand=held).value
        return held

    def _record_provisioned(self, deployment: Deployment, futures: dict[Future[VmInfo], str]) -> Deployment | None:
        """Record the machines as their clones finish, from this thread only (so step events never
        race each other): every machine finished by the time the previous write ended, and those
        finishing within GATHER_SECONDS of the first of them, go into one write, the last one with
        Deployed (written as soon as the last machine is done). Writes go to a copy of the deployment of our own, kept
        from one write to the next (the workers read `deployment`), re-read only when another
        write moved it on. The deployment as last written (None: nothing written here)."""
        # Read while the first clones run, not after they end.
        held: Deployment | None = self.app.deployment(deployment.id) if futures else None
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            if remaining and not any(f.exception() is not None for f in done):
                more, remaining = wait(remaining, timeout=GATHER_SECONDS, return_when=ALL_COMPLETED)
                done |= more
            finished: list[tuple[str, VmInfo]] = []
            failure: BaseException | None = None
            for future in sorted(done, key=lambda f: futures[f]):
                if future.exception() is not None:
                    failure = failure or future.exception()
                elif futures[future] == GATEWAY_MACHINE:
                    self.fences.record_gateway(deployment, future.result())
                    held = None  # written without our copy
                else:
                    finished.append((futures[future], future.result()))
            if finished:
                last = not remaining and failure is None

                def step(d: Deployment, finished: list[tuple[str, VmInfo]] = finished, last: bool = last) -> None:
                    for name, vm in finished:
                        d.record_machine_provisioned(
                            machine=name, vm_name=vm.name, vm_id=vm.vm_id, ip=vm.ip,
                            mac=vm.macs[0] if vm.macs else None, actor=ACTOR,
                        )  # fmt: skip
                    if last:
                        # Refused (a machine is still missing) before it changes anything: the
                        # machines stay recorded and the next pass finds what is left.
                        with suppress(InvalidTransitionError):
                            d.mark_deployed(ACTOR)

                held = self.app.record_step(deployment.id, step, in_hand=held).value
            if failure is not None:
                raise failure
        return held

    @staticmethod
    def _start(deployment: Deployment, first: list[bool]) -> None:
        """Start provisioning in the addresses' write; `first` says, for the attempt that was
        written last (a lost write is decided again), whether it started the first attempt."""
        first[:] = [deployment.state == REQUESTED and deployment.attempt == 1]
        deployment.start_provisioning(ACTOR)

    def _prepare_vcenter(self, deployment: Deployment, machines: list[dict[str, Any]]) -> Prepared | None:
        """The stage's pool made sure of, what placement reads when a machine has no place yet, and
        its choices for them (`machines`: the deployment's, copied when this was asked). The two
        are read side by side (the clones wait for both); a fault of the pool's is the one raised."""
        with ThreadPoolExecutor(1, thread_name_prefix="sk-pool") as beside:
            pool = beside.submit(self.vcenter.ensure_pool, deployment.resource_pool)
            try:
                prepared = self.placement.inventory_for(deployment, machines, choose=True)
            except BaseException:
                pool.result()
                raise
            pool.result()
        return prepared

    def _provision_machine(
        self, deployment: Deployment, machine: dict[str, Any], power_on: bool = True, fresh: bool = False
    ) -> VmInfo:
        """`fresh`: none of the deployment's VMs can exist yet (no lookup by name before the clone)."""
        spec = machine["spec"]
        addressing = machine.get("addressing") or {}
        source = (deployment.copy_of or {}).get("machines", {}).get(spec["name"])
        linked = deployment.copy_of["linked"] if deployment.copy_of is not None else spec["clone_mode"] == "linked"
        # Cloning is idempotent: after a crash this returns the VM the earlier attempt made
        # (found by its deterministic name / tags), powered on or not.
        placement = machine.get("placement") or {}
        vm = self.vcenter.clone(
            CloneSpec(
                vm_name=vm_name(deployment.id, spec["name"]),
                template=spec["template"],
                resource_pool=placement.get("resource_pool") or deployment.resource_pool,
                linked=linked,
                cpus=spec["cpus"],
                memory_mib=spec["memory_mib"],
                deployment_id=deployment.id,
                machine=spec["name"],
                source_vm_id=source["vm_id"] if source else None,
                source_snapshot=copy_snapshot(deployment.id) if source and linked else None,
                datastore=placement.get("datastore"),
                host=placement.get("host"),
                fresh=fresh,
            )
        )
        self.placement.settle(machine, vm)  # a clone may ignore the host placement chose
        if not vm.powered_on:
            custom = spec["customization"]
            attach_medium(self.app, self.vcenter, vm.vm_id, spec)
            self.vcenter.set_nics(vm.vm_id, machine_nics(deployment, addressing.get("macs", [])))
            if source is not None and deployment.fence is not None:
                # A fenced copy keeps its source's guest identity and addresses: nothing to customise.
                return self.vcenter.power_on(vm.vm_id) if power_on else vm
            identity = GuestIdentity(
                hostname=custom["hostname"],
                os_family=custom["os"],
                ip=addressing.get("ip"),  # None: DHCP (ip_mode dhcp, or a stage without IP pools)
                prefix_length=addressing.get("prefix_length"),
                gateway=addressing.get("gateway"),
                dns=tuple(addressing.get("dns", [])),
            )
            self.vcenter.customize(vm.vm_id, identity)
            if power_on:
                vm = self.vcenter.power_on(vm.vm_id)
        return vm

    def _snapshot_sources(self, deployment: Deployment) -> None:
        """A linked copy clones each source VM from a snapshot taken for this copy."""
        assert deployment.copy_of is not None
        for machine in deployment.machines:
            source = deployment.copy_of["machines"].get(machine["name"])
            if machine["state"] != "provisioned" and source and source["vm_id"]:
                self.vcenter.create_snapshot(source["vm_id"], copy_snapshot(deployment.id))

    def _fail(self, deployment_id: UUID, reason: str) -> None:
        """Clean up every VM of the attempt, then record the failure with vCenter's reason."""
        cleanup_error = ""
        try:
            self._destroy_all(deployment_id)
            self.fences.tear_down(self.app.deployment(deployment_id))
        except VCENTER_FAULTS as fault:
            cleanup_error = f" (cleanup also failed: {fault.message})"

        def fail(d: Deployment) -> None:
            if d.state == REQUESTED:
                # Failed before its first write (which starts provisioning): as if started, then failed.
                d.start_provisioning(ACTOR)
            d.record_failure(reason + cleanup_error, ACTOR)

        self.app.record_step(deployment_id, fail)

    def _destroy_all(self, deployment_id: UUID) -> list[str]:
        vms = self.vcenter.find_vms(deployment_id)

        def destroy(vm: VmInfo) -> str | None:
            if vm.powered_on:
                self.vcenter.power_off(vm.vm_id)
            self.vcenter.destroy(vm.vm_id)
            return vm.machine

        # Machines first: a fence's gateway goes after them (FenceSteps.tear_down).
        machines = [vm for vm in vms if vm.machine != GATEWAY_MACHINE]
        with ThreadPoolExecutor(self.parallel_tasks, thread_name_prefix="sk-destroy") as pool:
            return [m for m in pool.map(destroy, machines) if m]

    def _undeploy(self, deployment: Deployment) -> None:
        if deployment.captured:  # by the VM ids it adopted; or let go of them
            undeploy_captured(self, deployment, ACTOR)
            return
        try:
            destroyed = set(self._destroy_all(deployment.id))
        except VCENTER_FAULTS as fault:
            # Leave the deployment undeploying; the follower retries the event later.
            raise InfrastructureError(f"undeploy of {deployment.id} failed: {fault.message}") from fault
        for machine in deployment.machines:
            if machine["state"] == "provisioned" or machine["name"] in destroyed:
                step = partial(Deployment.record_machine_destroyed, machine=machine["name"], actor=ACTOR)
                self.app.record_step(deployment.id, step)
        try:
            self.fences.tear_down(self.app.deployment(deployment.id))
            self._remove_copy_snapshots(self.app.deployment(deployment.id))
        except VCENTER_FAULTS as fault:
            raise InfrastructureError(f"undeploy of {deployment.id} failed: {fault.message}") from fault
        self.app.record_step(deployment.id, lambda d: d.mark_undeployed(ACTOR))

    def _remove_copy_snapshots(self, deployment: Deployment) -> None:
        """A linked copy's disks hang on the snapshot taken for it on each source VM (one per copy,
        so this copy is its last user): once the copy's VMs are gone, the snapshots go too, one
        CopySnapshotRemoved per source machine (a restarted worker skips those recorded; removing
        one already gone is a no-op). Full copies take no snapshot."""
        copy = deployment.copy_of
        if copy is None or not copy["linked"]:
            return
        for name, source in sorted(copy["machines"].items()):
            if name in deployment.copy_snapshots_removed or not (source or {}).get("vm_id"):
                continue
            self.vcenter.remove_snapshot(source["vm_id"], copy_snapshot(deployment.id))
            step = partial(Deployment.record_copy_snapshot_removed, machine=name, actor=ACTOR)
            self.app.record_step(deployment.id, step)

    def _move(self, deployment: Deployment) -> None:
        target = deployment.target_pool
        assert target is not None
        if PoolPath.parse(target).cluster_path != PoolPath.parse(deployment.resource_pool).cluster_path:
            self._move_across_clusters(deployment, target)
            return
        moved: list[str] = []
        try:
            self.vcenter.ensure_pool(target)
            for vm in self.vcenter.find_vms(deployment.id):
                if vm.resource_pool != target:
                    self.vcenter.relocate(vm.vm_id, target)
                    moved.append(vm.vm_id)
                if vm.machine and deployment.machine(vm.machine)["resource_pool"] != target:
                    step = partial(
                        Deployment.record_machine_moved, machine=vm.machine, resource_pool=target, actor=ACTOR
                    )
                    self.app.record_step(deployment.id, step)
        except VCENTER_FAULTS as fault:
            reason = fault.message
            rolled_back = True
            try:
                for vm_id in moved:
                    self.vcenter.relocate(vm_id, deployment.resource_pool)
            except VCENTER_FAULTS as rollback_fault:
                rolled_back = False
                reason += f" (moving back also failed: {rollback_fault.message})"
            self.app.record_step(deployment.id, lambda d: d.record_move_failure(reason, rolled_back, ACTOR))
            return
        self.app.record_step(deployment.id, lambda d: d.complete_move(ACTOR))

    def _move_across_clusters(self, deployment: Deployment, target: str) -> None:
        """Relocation cannot cross clusters: clone each VM into the target pool, move its MACs to
        the clone, start it, and retire the source. Machines already done are skipped on restart."""
        retired = 0
        try:
            self.vcenter.ensure_pool(target)
            for machine in deployment.machines:
                if machine["state"] != "provisioned" or machine["resource_pool"] == target:
                    continue
                self._reclone(deployment, machine, target)
                retired += 1
        except VCENTER_FAULTS as fault:
            reason = fault.message
            # Clones made for machines not yet switched over are discarded; sources keep running.
            for vm in self.vcenter.find_vms(deployment.id):
                if vm.resource_pool == target and vm.vm_id not in {m["vm_id"] for m in deployment.machines}:
                    self.vcenter.power_off(vm.vm_id)
                    self.vcenter.destroy(vm.vm_id)
            for vm in self.vcenter.find_vms(deployment.id):
                if not vm.powered_on and vm.resource_pool != target:
                    self.vcenter.power_on(vm.vm_id)
            rolled_back = retired == 0
            if not rolled_back:
                reason += f" ({retired} machine(s) had already moved to {target})"
            self.app.record_step(deployment.id, lambda d: d.record_move_failure(reason, rolled_back, ACTOR))
            return
        self.app.record_step(deployment.id, lambda d: d.complete_move(ACTOR))

    def _reclone(self, deployment: Deployment, machine: dict[str, Any], target: str) -> None:
        name = f"{vm_name(deployment.id, machine['name'])}-{hashlib.sha256(target.encode()).hexdigest()[:4]}"
        spec = machine["spec"]
        clone = self.vcenter.clone(
            CloneSpec(
                vm_name=name, template=spec["template"], resource_pool=target, linked=False, cpus=spec["cpus"],
                memory_mib=spec["memory_mib"], deployment_id=deployment.id, machine=machine["name"],
                source_vm_id=machine["vm_id"],
            )
        )  # fmt: skip
        if not clone.powered_on:
            self.vcenter.power_off(machine["vm_id"])
            macs = (machine.get("addressing") or {}).get("macs", [])
            self.vcenter.set_nics(clone.vm_id, [NicSetting(network=n["network"], mac=n["mac"]) for n in macs])
            clone = self.vcenter.power_on(clone.vm_id)
        self.vcenter.power_off(machine["vm_id"])
        self.vcenter.destroy(machine["vm_id"])
        step = partial(
            Deployment.record_machine_recloned, machine=machine["name"], resource_pool=target,
            vm_name=clone.name, vm_id=clone.vm_id, actor=ACTOR,
        )  # fmt: skip
        self.app.record_step(deployment.id, step)
