"""Placement leaves the archive tiers' datastores to the archives (unless nothing else is left)."""

from __future__ import annotations

from domain.ports import ClusterCapacity, DatastoreCapacity
from domain.processes.placement import without_archive_tiers


def cluster(*names: str) -> ClusterCapacity:
    stores = tuple(DatastoreCapacity(name=n, free_mib=1000, capacity_mib=2000) for n in names)
    return ClusterCapacity(datacenter="DC0", name="DC0_C0", drs=False, hosts=(), datastores=stores)


def test_archive_datastores_are_not_offered_to_machines() -> None:
    kept = without_archive_tiers(cluster("LocalDS_0", "LocalDS_1"), ("LocalDS_1", "file:/srv/archives"))
    assert [d.name for d in kept.datastores] == ["LocalDS_0"]


def test_a_cluster_with_only_the_archive_datastore_keeps_it() -> None:
    kept = without_archive_tiers(cluster("LocalDS_1"), ("LocalDS_1",))
    assert [d.name for d in kept.datastores] == ["LocalDS_1"]
