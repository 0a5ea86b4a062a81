"""The linked-clone dependency tree and safe delete: a template (or deployment) other disks read
through is not removed while they live; `dependants` answers the question beforehand."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.application import Outcome, StagekeeperApplication
from domain.dependants import Node, build_tree, dependants_of, deployment_label, deployment_sizes, find
from domain.deployment import UNDEPLOYED, Deployment
from domain.errors import ConflictError, NotFoundError
from domain.text import check_reason, check_text
from domain.values import MAX_TEMPLATE_NAME

MAX_NAMED = 10  # dependants named in a refusal; the rest are counted
MAX_TREE_DEPLOYMENTS = 5000  # live deployments a tree is built from (the read model's page bound)


class StorageCommands(StagekeeperApplication):
    def live_deployments(self, deployment_ids: Iterable[UUID]) -> list[Deployment]:
        """These deployments as the event store has them now, those not undeployed."""
        found: list[Deployment] = []
        for deployment_id in deployment_ids:
            try:
                deployment: Aggregate = self.repository.get(deployment_id)
            except AggregateNotFoundError:
                continue
            if isinstance(deployment, Deployment) and deployment.state != UNDEPLOYED:
                found.append(deployment)
        return found

    def storage_tree(self, deployment_ids: Iterable[UUID]) -> list[Node]:
        """Every catalogue template and what hangs off it, then deployments with linked copies."""
        return build_tree(self.catalogue().templates, self.live_deployments(deployment_ids))

    def template_dependants(self, name: object, deployment_ids: Iterable[UUID]) -> Node:
        """The template's node: the deployments whose linked clones read through it, and their copies."""
        name = check_text(name, "name", max_length=MAX_TEMPLATE_NAME, required=True)
        if self.catalogue().get(name) is None:
            raise NotFoundError(f"no template named '{name}' in the catalogue", field="name")
        node = find(self.storage_tree(deployment_ids), "template", name)
        assert node is not None
        return node

    def deployment_dependants(self, deployment_id: UUID) -> Node:
        """The deployment's node: its live linked copies, and theirs (followed in the event store)."""
        source = self.load(Deployment, deployment_id, "deployment")
        family, pending = [source], [source]
        while pending:
            current = pending.pop()
            for copy in self.live_deployments(UUID(c) for c in current.copies):
                if copy.copy_of is not None and copy.copy_of["linked"] and copy not in family:
                    family.append(copy)
                    pending.append(copy)
        templates = self.catalogue().templates
        node = find(build_tree(templates, family), "deployment", str(source.id))
        if node is None:  # a full clone with no linked copy (or undeployed): nothing hangs off it
            own, shared = deployment_sizes(source, templates, None)
            return Node(
                "deployment", str(source.id), deployment_label(source), own, shared, str(source.service_id),
                source.stage, source.state,
            )  # fmt: skip
        return node

    def remove_template(
        self, name: object, deployment_ids: Iterable[UUID], actor: str, reason: str | None = None
    ) -> Outcome[dict[str, Any]]:
        """Take a template out of the catalogue, refused (409) while linked clones read through it."""
        reason = check_reason(reason)
        node = self.template_dependants(name, deployment_ids)
        below = dependants_of(node)
        if below:
            named = "; ".join(n.label for n in below[:MAX_NAMED])
            more = f" and {len(below) - MAX_NAMED} more" if len(below) > MAX_NAMED else ""
            raise ConflictError(
                f"template '{node.key}' cannot be removed: the linked clones of {named}{more} have disks on its "
                "snapshot; undeploy them first",
                field="name",
            )

        def attempt() -> Outcome[dict[str, Any]]:
            catalogue = self.catalogue()
            record = catalogue.remove_template(node.key, actor, reason)
            return Outcome(record, self.commit(catalogue))

        return self.retrying(attempt)
