"""Placement scoring (domain/placement.py): rules, capacity, deterministic ties. No I/O."""

from __future__ import annotations

import pytest

from domain.errors import ValidationError
from domain.placement import Need, Placed, PlacementImpossibleError, need_of, place, plan_rebalance
from domain.placement_rules import default_tier, parse_extra_pools, parse_machine_placement
from domain.ports import ClusterCapacity, DatastoreCapacity, DrsRecommendation, HostCapacity

POOLS = {"C0": "/DC0/host/C0/Resources/app", "C1": "/DC0/host/C1/Resources/app"}


def cluster(
    name: str, hosts: dict[str, int], drs: bool = False, stores: dict[str, tuple[int, int]] | None = None
) -> ClusterCapacity:
    return ClusterCapacity(
        datacenter="DC0",
        name=name,
        drs=drs,
        hosts=tuple(HostCapacity(h, free_cpu_mhz=10_000, free_memory_mib=m) for h, m in hosts.items()),
        datastores=tuple(
            DatastoreCapacity(d, free_mib=free, capacity_mib=cap)
            for d, (free, cap) in (stores or {"DS0": (100_000, 200_000)}).items()
        ),
    )


def need(name: str, memory: int = 1024, disk: int = 0, tier: str | None = None, group: str | None = None) -> Need:
    return Need(name, 1, memory, disk, tier or default_tier(name), group)


def test_machines_of_one_tier_go_to_different_hosts_even_when_one_host_has_more_room() -> None:
    clusters = [cluster("C0", {"H0": 64_000, "H1": 8_000})]
    web1, web2 = place([need("web1"), need("web2")], clusters, POOLS)
    assert (web1.host, web2.host) == ("H0", "H1")
    assert "no other 'web' machine on it" in web2.reason


def test_anti_affinity_gives_way_when_there_are_more_machines_than_hosts() -> None:
    clusters = [cluster("C0", {"H0": 64_000, "H1": 64_000})]
    choices = place([need(f"web{i}") for i in range(1, 4)], clusters, POOLS)
    assert sorted(c.host for c in choices[:2]) == ["H0", "H1"]
    assert "every host already holds a 'web' machine" in choices[2].reason


def test_affinity_group_joins_the_host_of_its_first_machine() -> None:
    clusters = [cluster("C0", {"H0": 64_000, "H1": 64_000, "H2": 64_000})]
    app, db = place([need("app1", group="pair"), need("db1", group="pair")], clusters, POOLS)
    assert db.host == app.host
    assert "affinity group 'pair' with app1" in db.reason


def test_affinity_group_placed_earlier_is_joined_and_a_full_host_is_said_so() -> None:
    clusters = [cluster("C0", {"H0": 512, "H1": 64_000})]
    earlier = [Placed("app1", "C0", "H0", "app", "pair")]
    (db,) = place([need("db1", memory=1024, group="pair")], clusters, POOLS, earlier)
    assert db.host == "H1"
    assert "could not join app1 (host H0 is full)" in db.reason


def test_the_host_with_most_free_memory_wins_and_ties_break_on_names() -> None:
    clusters = [cluster("C1", {"H9": 4_000, "H8": 4_000}), cluster("C0", {"H5": 4_000})]
    (first,) = place([need("db1")], clusters, POOLS)
    assert (first.cluster, first.host) == ("C0", "H5")  # equal memory and CPU: cluster, then host name
    (again,) = place([need("db1")], list(reversed(clusters)), POOLS)
    assert again == first


def test_each_choice_takes_its_share_of_memory_before_the_next() -> None:
    clusters = [cluster("C0", {"H0": 3_000, "H1": 2_500})]
    choices = place([need("a1", 2_000, tier="a"), need("b1", 2_000, tier="b")], clusters, POOLS)
    assert [c.host for c in choices] == ["H0", "H1"]  # H0 keeps 1,000 after a1: H1 has more for b1


def test_a_full_cluster_overcommits_memory_and_says_so() -> None:
    clusters = [cluster("C0", {"H0": 100})]
    (choice,) = place([need("big1", 4_096)], clusters, POOLS)
    assert choice.host == "H0"
    assert "no host has 4096 MiB free (memory overcommitted)" in choice.reason


def test_only_clusters_the_stage_maps_are_used() -> None:
    clusters = [cluster("C0", {"H0": 1_000}), cluster("C2", {"H9": 900_000})]
    (choice,) = place([need("web1")], clusters, POOLS)
    assert (choice.cluster, choice.resource_pool) == ("C0", POOLS["C0"])


def test_datastore_keeps_its_margin_and_the_emptiest_wins() -> None:
    stores = {"DS0": (30_000, 100_000), "DS1": (50_000, 100_000)}
    (choice,) = place([need("web1", disk=25_000)], [cluster("C0", {"H0": 64_000}, stores=stores)], POOLS)
    assert choice.datastore == "DS1"
    assert "most space left (25000 MiB, margin 10%)" in choice.reason
    # DS0 has more free space, but 40,000 left of 500,000 is under its 10% margin: DS1 it is.
    stores = {"DS0": (60_000, 500_000), "DS1": (50_000, 100_000)}
    (second,) = place([need("web1", disk=20_000)], [cluster("C0", {"H0": 64_000}, stores=stores)], POOLS)
    assert second.datastore == "DS1"


def test_no_datastore_with_room_over_the_margin_is_a_refusal_naming_the_machine() -> None:
    clusters = [cluster("C0", {"H0": 64_000}, stores={"DS0": (12_000, 100_000)})]
    with pytest.raises(PlacementImpossibleError, match="machine 'web1'"):
        place([need("web1", disk=5_000)], clusters, POOLS, margin_percent=10)


def test_a_cluster_without_datastore_room_is_passed_over_for_one_with_room() -> None:
    clusters = [
        cluster("C0", {"H0": 64_000}, stores={"DS0": (1_000, 100_000)}),
        cluster("C1", {"H1": 1_000}, stores={"DS1": (90_000, 100_000)}),
    ]
    (choice,) = place([need("web1", disk=5_000)], clusters, POOLS)
    assert (choice.cluster, choice.datastore) == ("C1", "DS1")


def test_hosts_out_of_service_are_never_chosen() -> None:
    c = cluster("C0", {"H0": 64_000, "H1": 1_000})
    down = ClusterCapacity(
        "DC0", "C0", False, (HostCapacity("H0", 10_000, 64_000, usable=False), c.hosts[1]), c.datastores
    )
    (choice,) = place([need("web1")], [down], POOLS)
    assert choice.host == "H1"


def test_drs_is_followed_when_it_keeps_the_rules_and_overruled_when_it_breaks_them() -> None:
    clusters = [cluster("C0", {"H0": 64_000, "H1": 64_000}, drs=True)]
    asked: list[str] = []

    def drs(c: ClusterCapacity, n: Need) -> DrsRecommendation:
        asked.append(n.machine)
        return DrsRecommendation("H1", "DS0")

    web1, web2 = place([need("web1"), need("web2")], clusters, POOLS, drs=drs)
    assert web1.host == "H1"
    assert web1.reason.startswith("DRS recommended host H1")
    assert web2.host == "H0"
    assert "DRS recommended host H1, which breaks the 'web' anti-affinity" in web2.reason
    assert asked == ["web1", "web2"]


def test_drs_is_not_asked_for_a_cluster_without_it() -> None:
    def drs(c: ClusterCapacity, n: Need) -> DrsRecommendation:
        raise AssertionError("asked")

    (choice,) = place([need("web1")], [cluster("C0", {"H0": 64_000})], POOLS, drs=drs)
    assert choice.host == "H0"


def test_rebalance_splits_a_tier_sharing_a_host_and_leaves_good_placements_alone() -> None:
    clusters = [cluster("C0", {"H0": 60_000, "H1": 32_000, "H2": 64_000})]
    machines = [
        (need("web1"), Placed("web1", "C0", "H0", "web")),
        (need("web2"), Placed("web2", "C0", "H0", "web")),
        (need("db1"), Placed("db1", "C0", "H1", "db")),
    ]
    moves = plan_rebalance(machines, clusters)
    assert [(m.machine, m.from_host, m.host) for m in moves] == [("web1", "H0", "H2")]
    assert "anti-affinity" in moves[0].reason
    assert plan_rebalance([(need("web1"), Placed("web1", "C0", "H2", "web")), machines[1]], clusters) == []


def test_rebalance_brings_an_affinity_group_together_and_empties_a_host_in_maintenance() -> None:
    c = cluster("C0", {"H0": 64_000, "H1": 64_000})
    machines = [
        (need("app1", group="g"), Placed("app1", "C0", "H0", "app", "g")),
        (need("db1", group="g"), Placed("db1", "C0", "H1", "db", "g")),
    ]
    (move,) = plan_rebalance(machines, [c])
    assert (move.machine, move.host) == ("db1", "H0")
    down = ClusterCapacity("DC0", "C0", False, (HostCapacity("H0", 1, 64_000, usable=False), c.hosts[1]), c.datastores)
    (out,) = plan_rebalance([(need("web1"), Placed("web1", "C0", "H0", "web"))], [down])
    assert (out.host, out.reason) == ("H1", "host H0 is not usable (maintenance or disconnected)")


def test_machine_rules_and_extra_pools_are_checked() -> None:
    assert parse_machine_placement({"tier": "web", "affinity_group": "g"}, "m") == {
        "tier": "web",
        "affinity_group": "g",
    }
    assert parse_machine_placement(None, "m") is None
    with pytest.raises(ValidationError, match="unknown field"):
        parse_machine_placement({"rack": "1"}, "m")
    with pytest.raises(ValidationError):
        parse_machine_placement({"tier": "a\x00b"}, "m")
    main = "/DC0/host/C0/Resources/app"
    assert parse_extra_pools(["/DC0/host/C1/Resources/app"], main, "extra_pools") == ("/DC0/host/C1/Resources/app",)
    with pytest.raises(ValidationError, match="given twice"):
        parse_extra_pools([main], main, "extra_pools")
    with pytest.raises(ValidationError, match="at most 8"):
        parse_extra_pools([f"/DC0/host/C{i}/Resources" for i in range(9)], main, "extra_pools")
    with pytest.raises(ValidationError):
        parse_extra_pools("not a list", main, "extra_pools")


def test_need_reads_the_machine_spec_and_its_rules() -> None:
    spec = {
        "name": "web12",
        "cpus": 2,
        "memory_mib": 2048,
        "disks": [{"size_gib": 3}],
        "placement": {"affinity_group": "g"},
    }
    assert need_of(spec) == Need("web12", 2, 2048, 3072, "web", "g")
    assert default_tier("db-2") == "db"
    assert default_tier("7") == "7"


def test_a_placement_pass_asks_drs_once_per_cluster_and_machine_size() -> None:
    from typing import Any, cast

    from domain.errors import VCenterFaultError
    from domain.processes.placement import PlacementSteps

    asked: list[tuple[str, int, int]] = []

    class Advisor:
        def recommend_placement(self, datacenter: str, cluster: str, cpus: int, memory_mib: int) -> DrsRecommendation:
            asked.append((cluster, cpus, memory_mib))
            if memory_mib == 4096:
                raise VCenterFaultError("DRS is off")
            return DrsRecommendation(host="H1", datastore="DS0")

    ask = PlacementSteps(cast(Any, None), cast(Any, Advisor())).drs("DC0")
    c0, c1 = cluster("C0", {"H0": 64_000}, drs=True), cluster("C1", {"H0": 64_000}, drs=True)
    answers = [ask(c, need(f"web{i}", memory)) for i in range(3) for c in (c0, c1) for memory in (1024, 4096)]
    assert asked == [("C0", 1, 1024), ("C0", 1, 4096), ("C1", 1, 1024), ("C1", 1, 4096)]
    assert [a is None for a in answers[:4]] == [False, True, False, True]
    assert answers[4:] == answers[:4] * 2
    # A new pass asks again: vCenter may have changed since.
    PlacementSteps(cast(Any, None), cast(Any, Advisor())).drs("DC0")(c0, need("web9"))
    assert len(asked) == 5
