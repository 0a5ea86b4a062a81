"""VM snapshots: the tree as (name, snapshot) pairs, depth first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(trees: list[Any]) -> Iterator[tuple[str, Any]]:
    for tree in trees or []:
        yield str(tree.name), tree.snapshot
        yield from walk(tree.childSnapshotList)


def named(info: Any, name: str) -> Any | None:
    """The snapshot called `name` in a VM's snapshot info (vm.snapshot, None without snapshots)."""
    if info is None:
        return None
    return next((snapshot for found, snapshot in walk(info.rootSnapshotList) if found == name), None)
