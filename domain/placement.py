"""VM placement: which cluster, host and datastore each machine goes to, and why. Pure functions.

Rules, in order: a machine of an affinity group joins the host of the group's machines already
placed (when that host has room); machines of one tier (a configuration machine's `placement.tier`,
by default its name without trailing digits: web1, web2 -> "web") go to the host holding the fewest
machines of their tier (anti-affinity "when possible"); among those, the host with the most free
memory after the machine, then the most free CPU, then names (so ties are deterministic). Only hosts
with room for the machine's memory count (when none has, vSphere overcommits memory and the reason
says so; a datastore without room is a refusal). In a DRS cluster, DRS's recommendation is taken when it
keeps those rules; otherwise our own choice is, and the reason says so. The datastore is the one of
the cluster with the most free space left after the machine's disks, keeping `margin_percent` of its
capacity free. The resource-pool side (domain/commands/placement.py) is a different matter: which
service owns which pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from domain.errors import ConflictError
from domain.placement_rules import default_tier
from domain.ports import ClusterCapacity, DatastoreCapacity, DrsRecommendation, HostCapacity

MAX_MOVES = 256  # a rebalance plan's bound (a configuration's machines are bounded far below)


class PlacementImpossibleError(ConflictError):
    """No host or datastore has room for a machine (a provisioning failure, recorded with its reason)."""


@dataclass(frozen=True)
class Need:
    """What one machine asks of a host and a datastore, and the rules it belongs to."""

    machine: str
    cpus: int
    memory_mib: int
    disk_mib: int
    tier: str
    affinity_group: str | None = None


@dataclass(frozen=True)
class Choice:
    machine: str
    cluster: str
    resource_pool: str
    host: str
    datastore: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster, "resource_pool": self.resource_pool, "host": self.host,
            "datastore": self.datastore, "reason": self.reason,
        }  # fmt: skip


@dataclass(frozen=True)
class Placed:
    """A machine already somewhere (placed earlier, or as vCenter has it now)."""

    machine: str
    cluster: str
    host: str
    tier: str
    affinity_group: str | None = None


@dataclass(frozen=True)
class Move:
    machine: str
    cluster: str
    from_host: str
    host: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine, "cluster": self.cluster, "from_host": self.from_host, "host": self.host,
            "reason": self.reason,
        }  # fmt: skip


Drs = Callable[[ClusterCapacity, Need], DrsRecommendation | None]


def need_of(spec: Mapping[str, Any]) -> Need:
    """The need of a machine as a deployment snapshots it (values.Machine.to_dict())."""
    rules = spec.get("placement") or {}
    disks = sum(int(d.get("size_gib", 0)) for d in spec.get("disks") or [])
    return Need(
        machine=spec["name"], cpus=int(spec.get("cpus") or 1), memory_mib=int(spec.get("memory_mib") or 0),
        disk_mib=disks * 1024, tier=rules.get("tier") or default_tier(spec["name"]),
        affinity_group=rules.get("affinity_group"),
    )  # fmt: skip


# -- choosing ---------------------------------------------------------------------------------
@dataclass
class _Room:
    """Free capacity during one planning pass: each choice takes its share."""

    hosts: dict[tuple[str, str], HostCapacity]
    datastores: dict[tuple[str, str], DatastoreCapacity]
    where: list[Placed] = field(default_factory=list)

    def take(self, need: Need, cluster: str, host: str, datastore: str | None) -> None:
        # Memory is what a machine surely takes; CPU (MHz in use) only breaks ties, as vCenter reports it.
        h = self.hosts[(cluster, host)]
        self.hosts[(cluster, host)] = replace(h, free_memory_mib=h.free_memory_mib - need.memory_mib)
        if datastore is not None:
            d = self.datastores[(cluster, datastore)]
            self.datastores[(cluster, datastore)] = replace(d, free_mib=d.free_mib - need.disk_mib)
        self.where.append(Placed(need.machine, cluster, host, need.tier, need.affinity_group))

    def release(self, need: Need, cluster: str, host: str) -> None:
        h = self.hosts[(cluster, host)]
        self.hosts[(cluster, host)] = replace(h, free_memory_mib=h.free_memory_mib + need.memory_mib)
        self.where = [p for p in self.where if p.machine != need.machine]


def _room(clusters: Sequence[ClusterCapacity], placed: Iterable[Placed]) -> _Room:
    return _Room(
        hosts={(c.name, h.name): h for c in clusters for h in c.hosts},
        datastores={(c.name, d.name): d for c in clusters for d in c.datastores},
        where=list(placed),
    )


def _tier_count(room: _Room, cluster: str, host: str, tier: str, skip: str) -> int:
    return sum(1 for p in room.where if (p.cluster, p.host) == (cluster, host) and p.tier == tier and p.machine != skip)


def _datastore(
    cluster: ClusterCapacity, room: _Room, need: Need, margin_percent: int, preferred: str | None = None
) -> tuple[DatastoreCapacity, str] | None:
    def left(d: DatastoreCapacity) -> int:
        return room.datastores[(cluster.name, d.name)].free_mib - need.disk_mib

    def fits(d: DatastoreCapacity) -> bool:
        return left(d) >= d.capacity_mib * margin_percent // 100

    fitting = [d for d in cluster.datastores if fits(d)]
    if not fitting:
        return None
    if preferred is not None:
        chosen = next((d for d in fitting if d.name == preferred), None)
        if chosen is not None:
            return chosen, f"datastore {chosen.name} as DRS chose, {left(chosen)} MiB free after it"
    best = sorted(fitting, key=lambda d: (-left(d), d.name))[0]
    return best, f"datastore {best.name} has the most space left ({left(best)} MiB, margin {margin_percent}%)"


def _host_candidates(
    clusters: Sequence[ClusterCapacity], room: _Room, need: Need, margin_percent: int
) -> tuple[list[tuple[ClusterCapacity, HostCapacity]], str]:
    """Usable hosts beside a datastore with room; those with the memory free when there are any
    (vSphere overcommits memory, so a full host is a preference, not a refusal: the reason says so)."""
    usable = [
        (cluster, room.hosts[(cluster.name, host.name)])
        for cluster in clusters
        if _datastore(cluster, room, need, margin_percent) is not None
        for host in cluster.hosts
        if room.hosts[(cluster.name, host.name)].usable
    ]
    roomy = [(c, h) for c, h in usable if h.free_memory_mib >= need.memory_mib]
    if roomy or not usable:
        return roomy, ""
    return usable, f"no host has {need.memory_mib} MiB free (memory overcommitted); "


def choose(
    need: Need,
    clusters: Sequence[ClusterCapacity],
    pools: Mapping[str, str],
    room: _Room,
    margin_percent: int,
    drs: Drs | None,
) -> Choice:
    """One machine's place. `pools` maps the clusters the stage may use to its pool in each."""
    usable = [c for c in clusters if c.name in pools]
    candidates, note = _host_candidates(usable, room, need, margin_percent)
    if not candidates:
        raise PlacementImpossibleError(
            f"no usable host in {', '.join(sorted(pools))} beside a datastore with {need.disk_mib} MiB free "
            f"over its {margin_percent}% margin for machine '{need.machine}'",
            field="machines",
        )
    if need.affinity_group is not None:
        mates = [p for p in room.where if p.affinity_group == need.affinity_group and p.machine != need.machine]
        if mates:
            mate = sorted(mates, key=lambda p: p.machine)[0]
            for cluster, host in candidates:
                if (cluster.name, host.name) == (mate.cluster, mate.host):
                    chosen = _datastore(cluster, room, need, margin_percent)
                    assert chosen is not None
                    reason = (
                        f"affinity group '{need.affinity_group}' with {mate.machine} on host {host.name}; {chosen[1]}"
                    )
                    return Choice(need.machine, cluster.name, pools[cluster.name], host.name, chosen[0].name, reason)
            note += f"affinity group '{need.affinity_group}' could not join {mate.machine} (host {mate.host} is full); "
    fewest = min(_tier_count(room, c.name, h.name, need.tier, need.machine) for c, h in candidates)
    best = [(c, h) for c, h in candidates if _tier_count(room, c.name, h.name, need.tier, need.machine) == fewest]
    rule = (
        f"no other '{need.tier}' machine on it"
        if fewest == 0
        else f"every host already holds a '{need.tier}' machine, this one holds {fewest}"
    )
    best.sort(key=lambda ch: (-(ch[1].free_memory_mib - need.memory_mib), -ch[1].free_cpu_mhz, ch[0].name, ch[1].name))
    cluster, host = best[0]
    if cluster.drs and drs is not None:
        recommended = drs(cluster, need)
        if recommended is not None:
            allowed = {h.name for c, h in best if c.name == cluster.name}
            chosen = _datastore(cluster, room, need, margin_percent, recommended.datastore)
            if recommended.host in allowed and chosen is not None:
                reason = f"{note}DRS recommended host {recommended.host} ({rule}); {chosen[1]}"
                return Choice(need.machine, cluster.name, pools[cluster.name], recommended.host, chosen[0].name, reason)
            note += f"DRS recommended host {recommended.host}, which breaks the '{need.tier}' anti-affinity; "
    chosen = _datastore(cluster, room, need, margin_percent)
    assert chosen is not None
    free = host.free_memory_mib - need.memory_mib
    reason = f"{note}host {host.name} of {cluster.name}: {rule}, most free memory ({free} MiB after it); {chosen[1]}"
    return Choice(need.machine, cluster.name, pools[cluster.name], host.name, chosen[0].name, reason)


def place(
    needs: Sequence[Need],
    clusters: Sequence[ClusterCapacity],
    pools: Mapping[str, str],
    placed: Iterable[Placed] = (),
    margin_percent: int = 10,
    drs: Drs | None = None,
) -> list[Choice]:
    """Places for `needs`, in order, beside the machines already `placed` (the inventory's free
    capacity already counts those). Each choice takes its share before the next is made."""
    room = _room(clusters, placed)
    choices = []
    for need in needs:
        choice = choose(need, clusters, pools, room, margin_percent, drs)
        room.take(need, choice.cluster, choice.host, choice.datastore)
        choices.append(choice)
    return choices


def plan_rebalance(
    machines: Sequence[tuple[Need, Placed]], clusters: Sequence[ClusterCapacity], margin_percent: int = 10
) -> list[Move]:
    """Moves, within each machine's cluster, that mend broken rules: two machines of a tier on one
    host while another host of the cluster has none of that tier and room; a machine of an affinity
    group away from its group's first machine when that host has room; a machine on a host that is
    not usable (maintenance, disconnected). Never a surprise: the caller records the plan first."""
    room = _room(clusters, [placed for _, placed in machines])
    by_name = {c.name: c for c in clusters}
    moves: list[Move] = []
    for need, placed in sorted(machines, key=lambda m: m[0].machine):
        cluster = by_name.get(placed.cluster)
        if cluster is None or len(moves) >= MAX_MOVES:
            continue
        current = room.hosts.get((cluster.name, placed.host))
        here = _tier_count(room, cluster.name, placed.host, need.tier, need.machine)
        room.release(need, cluster.name, placed.host)
        target, reason = None, ""
        hosts = [room.hosts[(cluster.name, h.name)] for h in cluster.hosts]
        fits = [h for h in hosts if h.usable and h.free_memory_mib >= need.memory_mib and h.name != placed.host]
        group = [p for p in room.where if need.affinity_group and p.affinity_group == need.affinity_group]
        first = min(group, key=lambda p: p.machine) if group else None
        if first is not None and first.machine < need.machine:  # the group gathers on its first machine
            if first.host != placed.host and first.cluster == cluster.name:
                target = next((h for h in fits if h.name == first.host), None)
                reason = f"affinity group '{need.affinity_group}': join {first.machine} on {first.host}"
        elif current is not None and not current.usable:
            best = sorted(
                fits, key=lambda h: (_tier_count(room, cluster.name, h.name, need.tier, ""), -h.free_memory_mib, h.name)
            )
            target = best[0] if best else None
            reason = f"host {placed.host} is not usable (maintenance or disconnected)"
        elif here > 0:
            empty = [h for h in fits if _tier_count(room, cluster.name, h.name, need.tier, "") == 0]
            best = sorted(empty, key=lambda h: (-h.free_memory_mib, -h.free_cpu_mhz, h.name))
            target = best[0] if best else None
            other = target.name if target else "-"
            reason = f"anti-affinity: {placed.host} holds another '{need.tier}' machine, {other} none"
        if target is None:
            room.take(need, cluster.name, placed.host, None)
            continue
        room.take(need, cluster.name, target.name, None)
        moves.append(Move(need.machine, cluster.name, placed.host, target.name, reason))
    return moves
