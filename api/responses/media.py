"""The media library and the linked-clone dependency tree."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp


class Medium(Out):
    id: UUID
    name: str
    datacenter: str
    datastore: str
    path: str = Field(description="The file's path inside the datastore")
    datastore_path: str = Field(description="`[datastore] path`, as a CD-ROM backing names it")
    size: int = Field(description="Bytes, as received")
    sha256: str = Field(description="SHA-256 of the bytes received, hex")
    uploaded_by: str
    uploaded_at: Timestamp
    position: Position


class MediumList(Out):
    items: list[Medium] = Field(description="By name; every service may attach any of them")
    position: Position


class TreeNode(Out):
    kind: Literal["template", "deployment"]
    key: str = Field(description="The template's name, or the deployment's id")
    label: str
    own_gib: int = Field(description="Provisioned GiB only this node holds (full clones, growth past the base)")
    shared_gib: int = Field(description="Provisioned GiB it reads through from the node above (its shared base)")
    service_id: str | None
    stage: str | None
    state: str | None
    machines: list[str] = Field(description="Its machines that hang off the node above")
    children: list[TreeNode]


class TreeRow(Out):
    kind: Literal["template", "deployment"]
    key: str
    label: str
    own_gib: int
    shared_gib: int
    service_id: str | None
    stage: str | None
    state: str | None
    machines: list[str]
    depth: int
    parent: str | None
    dependants: int = Field(description="Nodes hanging directly off this one")


class StorageTree(Out):
    roots: list[TreeNode] = Field(description="Every catalogue template, then deployments with linked copies")
    rows: list[TreeRow] = Field(description="The same nodes as a table, depth first")
    hidden: int = Field(description="Dependants in services the caller may not read (left out)")
    position: Position


class Dependants(Out):
    node: TreeNode
    dependants: list[TreeRow] = Field(description="Every node below it, depth first")
    hidden: int = Field(description="Dependants in services the caller may not read (left out)")


class TemplateRemoved(Out):
    name: str
    position: Position
