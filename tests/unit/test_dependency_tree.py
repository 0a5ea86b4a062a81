"""The linked-clone dependency tree, built from aggregates alone (no I/O)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from domain.dependants import build_tree, dependants_of, find
from domain.deployment import Deployment
from tests.support import machine

TEMPLATES: dict[str, dict[str, Any]] = {
    "tpl-ubuntu-2404": {"name": "tpl-ubuntu-2404", "disks_gib": [16]},
    "tpl-rhel-9": {"name": "tpl-rhel-9", "disks_gib": [20, 10]},
}


def deployed(*machines: dict[str, Any], name: str = "shop") -> Deployment:
    deployment = Deployment(
        service_id=uuid4(), configuration_id=uuid4(), configuration_version=1, configuration_name=name,
        stage="int", resource_pool="/DC0/host/C/Resources/int", networks=[{"name": "front"}],
        machines=list(machines), actor="alice", reason=None,
    )  # fmt: skip
    deployment.start_provisioning("pm")
    for m in machines:
        deployment.record_machine_provisioned(m["name"], f"vm-{m['name']}", f"id-{m['name']}", None, None, "pm")
    deployment.mark_deployed("pm")
    return deployment


def linked_copy(source: Deployment) -> Deployment:
    copy = Deployment(
        service_id=source.service_id, configuration_id=source.configuration_id, configuration_version=1,
        configuration_name=source.configuration_name, stage="test", resource_pool="/DC0/host/C/Resources/test",
        networks=source.networks, machines=[m["spec"] for m in source.machines], actor="bob", reason=None,
    )  # fmt: skip
    copy.record_copy_source(source, linked=True, actor="bob", reason=None)
    source.record_copy_made(copy.id, "test", "bob", None)
    copy.start_provisioning("pm")
    for m in copy.machines:
        copy.record_machine_provisioned(m["name"], f"vm-c-{m['name']}", f"id-c-{m['name']}", None, None, "pm")
    copy.mark_deployed("pm")
    return copy


def test_linked_machines_hang_off_their_template_and_full_clones_off_nothing() -> None:
    linked = deployed(machine("web1"), machine("db1", template="tpl-rhel-9", clone_mode="full"))
    full = deployed(machine("app1", clone_mode="full"))
    roots = build_tree(TEMPLATES, [linked, full])
    ubuntu = find(roots, "template", "TPL-UBUNTU-2404")
    assert ubuntu is not None
    assert ubuntu.own_gib == 16
    assert [(c.key, c.machines) for c in ubuntu.children] == [(str(linked.id), ["web1"])]
    rhel = find(roots, "template", "tpl-rhel-9")
    assert rhel is not None
    assert rhel.children == []
    assert find(roots, "deployment", str(full.id)) is None


def test_sizes_split_what_a_node_holds_from_what_it_reads_through() -> None:
    # web1 grows its 16 GiB base disk to 40 and adds a 5 GiB disk; db1 is a full clone of 20+10.
    grown = machine("web1", disks=[{"size_gib": 40}, {"size_gib": 5}])
    deployment = deployed(grown, machine("db1", template="tpl-rhel-9", clone_mode="full"))
    node = find(build_tree(TEMPLATES, [deployment]), "deployment", str(deployment.id))
    assert node is not None
    assert (node.own_gib, node.shared_gib) == (24 + 5 + 30, 16)


def test_linked_copies_hang_off_their_source_and_the_chain_is_followed() -> None:
    source = deployed(machine("web1"))
    copy = linked_copy(source)
    second = linked_copy(copy)
    full = deployed(machine("web1", clone_mode="full"))
    of_full = linked_copy(full)
    roots = build_tree(TEMPLATES, [source, copy, second, full, of_full])
    ubuntu = find(roots, "template", "tpl-ubuntu-2404")
    assert ubuntu is not None
    assert [n.key for n in dependants_of(ubuntu)] == [str(source.id), str(copy.id), str(second.id)]
    copied = find(roots, "deployment", str(copy.id))
    assert copied is not None
    assert (copied.own_gib, copied.shared_gib) == (0, 16)
    # A full-clone deployment with a linked copy is a root of its own.
    assert [(r.kind, r.key) for r in roots if r.kind == "deployment"] == [("deployment", str(full.id))]
    assert [c.key for c in roots[-1].children] == [str(of_full.id)]


def test_undeployed_deployments_are_not_dependants_but_undeploying_ones_still_are() -> None:
    deployment = deployed(machine("web1"))
    deployment.request_undeploy("alice", None)
    ubuntu = find(build_tree(TEMPLATES, [deployment]), "template", "tpl-ubuntu-2404")
    assert ubuntu is not None
    assert len(ubuntu.children) == 1
    deployment.record_machine_destroyed("web1", "pm")
    deployment.mark_undeployed("pm")
    assert deployment.state == "undeployed"
    ubuntu = find(build_tree(TEMPLATES, [deployment]), "template", "tpl-ubuntu-2404")
    assert ubuntu is not None
    assert ubuntu.children == []


def test_the_table_lists_every_node_depth_first_with_its_parent() -> None:
    source = deployed(machine("web1"))
    copy = linked_copy(source)
    ubuntu = find(build_tree(TEMPLATES, [source, copy]), "template", "tpl-ubuntu-2404")
    assert ubuntu is not None
    rows = ubuntu.flatten()
    assert [(r["key"], r["depth"], r["parent"], r["dependants"]) for r in rows] == [
        ("tpl-ubuntu-2404", 0, None, 1),
        (str(source.id), 1, "tpl-ubuntu-2404", 1),
        (str(copy.id), 2, str(source.id), 0),
    ]


def test_a_template_gone_from_the_catalogue_still_shows_what_reads_through_it() -> None:
    deployment = deployed(machine("web1", template="tpl-old"))
    old = find(build_tree(TEMPLATES, [deployment]), "template", "tpl-old")
    assert old is not None
    assert old.own_gib == 0
    assert [c.key for c in old.children] == [str(deployment.id)]
