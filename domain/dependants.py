"""The linked-clone dependency tree, from the event store (vCenter simulators keep no disk chain).

Edges: a deployment built from templates hangs off each template one of its machines is a linked
clone of (a delta disk on the template's snapshot); a linked copy hangs off the deployment it
was copied from (delta disks on snapshots of its VMs). Full clones hang off nothing.

Sizes are provisioned GiB as the event store knows them (a delta disk's real use is vCenter's
to say, and vcsim says 0): a node's `own_gib` is what only it holds (full clones' disks, and
what a linked clone's disks add beyond the base they read through), `shared_gib` what it reads
through from the node above (the base disks it shares with its siblings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.deployment import UNDEPLOYED, Deployment
from domain.values import normalise_key


@dataclass
class Node:
    kind: str  # "template" | "deployment"
    key: str  # the template's name, or the deployment's id
    label: str
    own_gib: int
    shared_gib: int = 0
    service_id: str | None = None
    stage: str | None = None
    state: str | None = None
    machines: list[str] = field(default_factory=list)  # machines linked to the node above
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "key": self.key, "label": self.label, "own_gib": self.own_gib,
            "shared_gib": self.shared_gib, "service_id": self.service_id, "stage": self.stage, "state": self.state,
            "machines": self.machines, "children": [c.to_dict() for c in self.children],
        }  # fmt: skip

    def flatten(self, depth: int = 0, parent: str | None = None) -> list[dict[str, Any]]:
        """Rows for a table: every node with its depth and the node it hangs off."""
        row = {k: v for k, v in self.to_dict().items() if k != "children"}
        rows = [{**row, "depth": depth, "parent": parent, "dependants": len(self.children)}]
        for child in self.children:
            rows += child.flatten(depth + 1, self.key)
        return rows


def deployment_label(deployment: Deployment) -> str:
    return f"{deployment.configuration_name} in {deployment.stage} ({deployment.id})"


def _template_disks(templates: Mapping[str, Mapping[str, Any]], name: str) -> list[int]:
    record = templates.get(normalise_key(name))
    return [int(d) for d in (record or {}).get("disks_gib", [])]


def machine_disks(spec: Mapping[str, Any], templates: Mapping[str, Mapping[str, Any]]) -> list[int]:
    """A machine's disks: as its configuration sizes them, else as its template has them."""
    given = [int(d["size_gib"]) for d in spec.get("disks", [])]
    return given or _template_disks(templates, str(spec.get("template", "")))


def _split(disks: list[int], base: list[int]) -> tuple[int, int]:
    """(own, shared) of disks read through from `base`: a disk grows past its base, or is new."""
    shared = sum(min(d, b) for d, b in zip(disks, base, strict=False))
    return sum(disks) - shared, shared


def linked_templates(deployment: Deployment) -> dict[str, list[str]]:
    """Template name -> machines of this deployment that are linked clones of it (none for a copy)."""
    if deployment.copy_of is not None:
        return {}
    found: dict[str, list[str]] = {}
    for machine in deployment.machines:
        spec = machine["spec"]
        if spec.get("clone_mode") == "linked" and not spec.get("captured"):
            found.setdefault(str(spec["template"]), []).append(machine["name"])
    return found


def linked_source(deployment: Deployment) -> str | None:
    """The deployment id a linked copy reads its disks through (None for anything else)."""
    copy = deployment.copy_of
    return str(copy["deployment_id"]) if copy is not None and copy["linked"] else None


def deployment_sizes(
    deployment: Deployment, templates: Mapping[str, Mapping[str, Any]], parent: str | None
) -> tuple[int, int]:
    own = shared = 0
    linked = {m for ms in linked_templates(deployment).values() for m in ms}
    for machine in deployment.machines:
        disks = machine_disks(machine["spec"], templates)
        if linked_source(deployment) is not None:
            base = disks  # a copy's disks start as its source's, at the snapshot
        elif machine["name"] in linked and (parent is None or normalise_key(machine["spec"]["template"]) == parent):
            base = _template_disks(templates, str(machine["spec"]["template"]))
        else:
            base = []
        o, s = _split(disks, base)
        own, shared = own + o, shared + s
    return own, shared


def build_tree(templates: Mapping[str, Mapping[str, Any]], deployments: Iterable[Deployment]) -> list[Node]:
    """Roots: every catalogue template (keyed by normalise_key(name), as the catalogue is), then each
    live deployment that others hang off without hanging off anything itself."""
    live = {str(d.id): d for d in deployments if d.state != UNDEPLOYED}
    by_source: dict[str, list[Deployment]] = {}
    for d in live.values():
        source = linked_source(d)
        if source is not None:
            by_source.setdefault(source, []).append(d)

    def deployment_node(d: Deployment, machines: list[str], parent: str | None, seen: frozenset[str]) -> Node:
        own, shared = deployment_sizes(d, templates, parent)
        node = Node(
            "deployment", str(d.id), deployment_label(d), own, shared, str(d.service_id), d.stage, d.state,
            machines,
        )  # fmt: skip
        for copy in sorted(by_source.get(str(d.id), []), key=lambda c: str(c.id)):
            if str(copy.id) not in seen:  # the event store cannot hold a cycle; never loop if it did
                node.children.append(deployment_node(copy, sorted(copy.copy_of["machines"]) if copy.copy_of else [],
                                                     None, seen | {str(copy.id)}))  # fmt: skip
        return node

    roots: list[Node] = []
    # A template linked clones still read through is shown even when the catalogue no longer has
    # it (removed before this rule existed): its size is then unknown (0).
    referenced = {normalise_key(t): {"name": t} for d in live.values() for t in linked_templates(d)}
    for key, record in sorted({**referenced, **templates}.items()):
        node = Node("template", str(record["name"]), str(record["name"]), sum(_template_disks(templates, key)))
        for d in sorted(live.values(), key=lambda d: str(d.id)):
            machines = {normalise_key(t): ms for t, ms in linked_templates(d).items()}.get(key)
            if machines:
                node.children.append(deployment_node(d, sorted(machines), key, frozenset({str(d.id)})))
        roots.append(node)
    hung = {str(d.id) for d in live.values() if linked_templates(d) or linked_source(d) is not None}
    for d in sorted(live.values(), key=lambda d: str(d.id)):
        if str(d.id) in by_source and str(d.id) not in hung:
            roots.append(deployment_node(d, [], None, frozenset({str(d.id)})))
    return roots


def dependants_of(node: Node) -> list[Node]:
    """Every node below `node` (depth first)."""
    found: list[Node] = []
    for child in node.children:
        found += [child, *dependants_of(child)]
    return found


def find(roots: Iterable[Node], kind: str, key: str) -> Node | None:
    for root in roots:
        if root.kind == kind and normalise_key(root.key) == normalise_key(key):
            return root
        below = find(root.children, kind, key)
        if below is not None:
            return below
    return None
