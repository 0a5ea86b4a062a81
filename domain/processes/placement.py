"""Placement steps of the process manager: choose and record where each machine goes before its
clone (MachinePlaced), put the clone on that host after it when vCenter put it elsewhere (the
clone names the host; vcsim 0.24.2 ignores it unless its harness places clones), and carry out a
recorded rebalance (MachineRelocated, then RebalanceEnded). Every step is recorded, so a restarted
worker skips what is done.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Any

from domain.deployment import DEPLOYED, Deployment
from domain.errors import VCenterFaultError
from domain.governance import stop_line
from domain.paths import PoolPath
from domain.placement import Choice, Need, Placed, need_of, place
from domain.ports import ClusterCapacity, DrsRecommendation, VCenterDriver, VmInfo
from domain.stagekeeper import Stagekeeper

log = logging.getLogger(__name__)
ACTOR = "stagekeeper"


def stage_pools(app: Stagekeeper, deployment: Deployment) -> dict[str, str]:
    """cluster -> pool: the deployment's own pool, and its stage's other pools in the same datacenter."""
    main = PoolPath.parse(deployment.resource_pool)
    pools = {main.cluster: deployment.resource_pool}
    service = app.service(deployment.service_id)
    stage = next((s for s in service.stages if s["name"] == deployment.stage), None)
    for extra in (stage or {}).get("extra_pools", []):
        path = PoolPath.parse(extra)
        if path.datacenter == main.datacenter:
            pools.setdefault(path.cluster, extra)
    return pools


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a placement pass reads from vCenter before it chooses; with `choices` when it chose
    already, for the machines named in `pending` (those without a place when it read them)."""

    inventory: list[ClusterCapacity]
    answers: dict[tuple[str, int, int], DrsRecommendation | None]
    choices: tuple[Choice, ...] | None = None
    pending: frozenset[str] = frozenset()


def unplaced(deployment: Deployment) -> list[dict[str, Any]]:
    """The machines still to build that have no place yet."""
    return [m for m in deployment.machines if m["state"] != "provisioned" and m.get("placement") is None]


def placed_of(deployment: Deployment, machines: list[dict[str, Any]] | None = None) -> list[Placed]:
    found = []
    for machine in deployment.machines if machines is None else machines:
        placement = machine.get("placement")
        if placement is not None and placement.get("cluster"):
            need = need_of(machine["spec"])
            where = (placement["cluster"], placement["host"])
            found.append(Placed(machine["name"], *where, need.tier, need.affinity_group))
    return found


class PlacementSteps:
    def __init__(self, app: Stagekeeper, vcenter: VCenterDriver) -> None:
        self.app = app
        self.vcenter = vcenter

    def drs(self, datacenter: str, answers: dict[tuple[str, int, int], DrsRecommendation | None] | None = None) -> Any:
        """DRS advice for one placement pass. vCenter's inventory does not change while the pass
        chooses (nothing is cloned yet, and our own scoring keeps track of the room each choice
        takes), so one question per cluster and machine size is asked once: 20 identical machines
        cost one DRS call, not 20 in a row before the first clone."""
        answers = {} if answers is None else answers  # `answers`: asked ahead for this pass (ask_ahead)

        def ask(cluster: ClusterCapacity, need: Need) -> DrsRecommendation | None:
            key = (cluster.name, need.cpus, need.memory_mib)
            if key in answers:
                return answers[key]
            try:
                answer = self.vcenter.recommend_placement(datacenter, cluster.name, need.cpus, need.memory_mib)
            except VCenterFaultError as fault:
                # DRS unavailable is no reason to stop: our own scoring decides, and says so.
                log.warning("DRS placement in %s failed: %s", cluster.name, fault.message)
                answer = None
            answers[key] = answer
            return answer

        return ask

    def inventory_for(
        self, deployment: Deployment, machines: list[dict[str, Any]] | None = None, choose: bool = False
    ) -> Prepared | None:
        """vCenter's inventory for placing the deployment's machines, with DRS's answers for its own
        cluster and each machine size (None: every machine has a place). Nothing in it depends on
        the event store's writes: it is read while the deployment's addresses are written.
        `machines`: the deployment's machines as they were when this was asked (a copy: the
        deployment itself may change meanwhile); `choose`: also choose their places (`choices`),
        to be recorded in the addresses' write (record_choices)."""
        machines = deployment.machines if machines is None else machines
        pending = [m for m in machines if m["state"] != "provisioned" and m.get("placement") is None]
        if not pending:
            return None
        main = PoolPath.parse(deployment.resource_pool)
        inventory = self.vcenter.placement_inventory(main.datacenter)
        answers: dict[tuple[str, int, int], DrsRecommendation | None] = {}
        ask = self.drs(main.datacenter, answers)
        for cluster in inventory:
            if cluster.name == main.cluster and cluster.drs and cluster.hosts:
                for need in {(n.cpus, n.memory_mib): n for n in map(need_of, (m["spec"] for m in pending))}.values():
                    ask(cluster, need)
        prepared = Prepared(inventory, answers)
        if not choose:
            return prepared
        choices = self._choose(deployment, pending, placed_of(deployment, machines), prepared)
        names = frozenset(m["name"] for m in pending)
        return dataclasses.replace(prepared, choices=None if choices is None else tuple(choices), pending=names)

    def _choose(
        self, deployment: Deployment, pending: list[dict[str, Any]], placed: list[Placed], prepared: Prepared
    ) -> list[Choice] | None:
        """Places for `pending` (None: a datacenter whose clusters report no hosts, left to
        vCenter), the pools they need made sure of."""
        pools = stage_pools(self.app, deployment)
        datacenter = PoolPath.parse(deployment.resource_pool).datacenter
        clusters = [c for c in prepared.inventory if c.name in pools and c.hosts]
        if not clusters:
            return None
        clusters = [without_archive_tiers(c, self.app.archive_tiers) for c in clusters]
        choices = place(
            [need_of(m["spec"]) for m in pending], clusters, pools, placed,
            self.app.placement_margin_percent, self.drs(datacenter, prepared.answers),
        )  # fmt: skip
        for pool in sorted({c.resource_pool for c in choices} - {deployment.resource_pool}):
            self.vcenter.ensure_pool(pool)
        return choices

    @staticmethod
    def record_choices(deployment: Deployment, prepared: Prepared | None) -> None:
        """Record the places `prepared` chose (inventory_for with choose), when the machines still
        without one are those it chose for; otherwise nothing (place_pending chooses again)."""
        if prepared is None or prepared.choices is None:
            return
        if frozenset(m["name"] for m in unplaced(deployment)) != prepared.pending:
            return
        for choice in prepared.choices:
            deployment.record_placement(choice.machine, choice.to_dict(), ACTOR)

    def place_pending(self, deployment: Deployment, prepared: Prepared | None = None) -> Deployment:
        """Record MachinePlaced for every machine still to build that has no place yet (one write);
        the deployment as it is after. A datacenter whose clusters report no hosts is left to vCenter.
        `prepared`: vCenter's inventory and DRS's answers, read for this pass already (inventory_for)."""
        pending = unplaced(deployment)
        if not pending:
            return deployment
        if prepared is None:
            datacenter = PoolPath.parse(deployment.resource_pool).datacenter
            prepared = Prepared(self.vcenter.placement_inventory(datacenter), {})
        choices = self._choose(deployment, pending, placed_of(deployment), prepared)
        if choices is None:
            return deployment

        def record(d: Deployment) -> None:
            for choice in choices:
                d.record_placement(choice.machine, choice.to_dict(), ACTOR)

        return self.app.record_step(deployment.id, record, in_hand=deployment).value

    def settle(self, machine: dict[str, Any], vm: VmInfo) -> None:
        """Put a new clone (still off) on the host and datastore placement chose, when vCenter did not."""
        placement = machine.get("placement")
        if placement is None or vm.powered_on:
            return
        where = self.vcenter.vm_location(vm.vm_id)
        datastore = placement["datastore"] if placement["datastore"] != where.datastore else None
        if where.host != placement["host"] or datastore is not None:
            self.vcenter.relocate_to_host(vm.vm_id, placement["host"], datastore)

    def rebalance(self, deployment: Deployment) -> None:
        """Carry out the recorded moves not yet done; a vCenter fault ends the rebalance with it."""
        work = deployment.rebalance_work
        assert work is not None
        if deployment.state != DEPLOYED:
            reason = f"the deployment is {deployment.state} now"
            self.app.record_step(deployment.id, lambda d: d.end_rebalance(reason, ACTOR))
            return
        line = stop_line(self.app)
        if line.on:  # stopped after the rebalance was recorded: move nothing more (review finding 5)
            stopped = f"the line was stopped (by {line.by}): {line.reason}"
            self.app.record_step(deployment.id, lambda d: d.end_rebalance(stopped, ACTOR))
            return
        try:
            for move in work["moves"]:
                if move["machine"] in work["done"]:
                    continue
                vm_id = deployment.machine(move["machine"]).get("vm_id")
                if vm_id:
                    self.vcenter.relocate_to_host(vm_id, move["host"], None)
                    where = self.vcenter.vm_location(vm_id)
                    step = partial(
                        Deployment.record_machine_relocated, machine=move["machine"], host=where.host,
                        datastore=where.datastore, actor=ACTOR,
                    )  # fmt: skip
                    self.app.record_step(deployment.id, step)
        except VCenterFaultError as fault:
            message = fault.message
            self.app.record_step(deployment.id, lambda d: d.end_rebalance(message, ACTOR))
            return
        self.app.record_step(deployment.id, lambda d: d.end_rebalance(None, ACTOR))


def without_archive_tiers(cluster: ClusterCapacity, tiers: tuple[str, ...]) -> ClusterCapacity:
    """The cluster without the datastores archives are kept on (unless nothing else is left): VMs
    placed there would share the archive tier's space and files."""
    kept = tuple(d for d in cluster.datastores if d.name not in tiers)
    return dataclasses.replace(cluster, datastores=kept) if kept else cluster
