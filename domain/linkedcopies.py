"""The source of live linked copies keeps its VMs.

A linked copy's disks are delta disks on a snapshot of its source's VMs: destroying the source
(undeploy, or a swap that does not keep the replaced deployment) would destroy what the copy's
disks depend on. So a deployment whose linked copies still exist (any state short of Undeployed,
a copy that has since been swapped into production too) refuses to be destroyed until they are
undeployed. Full clones depend on nothing and do not hold their source.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository

from domain.deployment import UNDEPLOYED, Deployment
from domain.errors import InvalidTransitionError

MAX_NAMED = 10  # copies named in the refusal; the rest are counted


def live_linked_copies(source: Deployment, copies: Iterable[Deployment]) -> list[Deployment]:
    """The copies (of those `source` made) that are linked clones of it and not yet undeployed."""
    return [
        c
        for c in copies
        if c.copy_of is not None
        and c.copy_of["deployment_id"] == str(source.id)
        and c.copy_of["linked"]
        and c.state != UNDEPLOYED
    ]


def _copies(repository: Repository[UUID], source: Deployment) -> list[Deployment]:
    found: list[Deployment] = []
    for copy_id in source.copies:
        try:
            copy: object = repository.get(UUID(copy_id))
        except AggregateNotFoundError:
            continue
        if isinstance(copy, Deployment):
            found.append(copy)
    return found


def check_destroyable(
    repository: Repository[UUID], source: Deployment, machines: Collection[str] | None = None
) -> None:
    """Refuse (409) to destroy `source` (or only the VMs of `machines`, as an upgrade that removes
    or rebuilds them would) while linked copies cloned from those VMs live, naming the copies."""
    live = live_linked_copies(source, _copies(repository, source))
    if machines is not None:
        live = [c for c in live if c.copy_of is not None and set(c.copy_of["machines"]) & set(machines)]
    if not live:
        return
    named = ", ".join(str(c.id) for c in live[:MAX_NAMED])
    more = f" and {len(live) - MAX_NAMED} more" if len(live) > MAX_NAMED else ""
    what = f"deployment {source.id}" if machines is None else f"the VMs of {', '.join(sorted(machines))}"
    raise InvalidTransitionError(
        f"{what} cannot be destroyed: the linked copies {named}{more} have disks on snapshots of "
        f"deployment {source.id}'s VMs; undeploy them first"
    )
