"""Allocated resources: what a deployment holds in a stage, from its recorded machines.

One rule for the allocation read model (projections/usage.py), its replay check and the stage
quotas (domain/quotas.py): a deployment holds its machines' vCPUs, memory and declared disks, and
one machine each, in its stage from the moment it is requested until it is undeployed (as the
service's occupancy counts it), and also in the target stage while it moves there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.deployment import UNDEPLOYED, Deployment


@dataclass(frozen=True)
class Figures:
    """Allocated resources: vCPUs, memory (MiB), provisioned disk (GiB) and machine count."""

    vcpus: int = 0
    memory_mib: int = 0
    disk_gib: int = 0
    machines: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.vcpus + other.vcpus,
            self.memory_mib + other.memory_mib,
            self.disk_gib + other.disk_gib,
            self.machines + other.machines,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "disk_gib": self.disk_gib,
            "machines": self.machines,
        }


def machine_figures(spec: Mapping[str, Any]) -> Figures:
    """One machine's spec (a configuration machine): its CPUs, memory and the disks it declares."""
    disks = sum(int(d.get("size_gib", 0)) for d in spec.get("disks", []) or [])
    return Figures(int(spec.get("cpus") or 0), int(spec.get("memory_mib") or 0), disks, 1)


def total(specs: Iterable[Mapping[str, Any]]) -> Figures:
    """The figures of several machine specs."""
    result = Figures()
    for spec in specs:
        result += machine_figures(spec)
    return result


def allocation(deployment: Deployment) -> dict[str, Figures]:
    """Stage name -> what the deployment holds there now (empty once undeployed)."""
    if deployment.state == UNDEPLOYED:
        return {}
    held = total(m["spec"] for m in deployment.machines)
    stages = {deployment.stage: held}
    if deployment.target_stage and deployment.target_stage != deployment.stage:
        stages[deployment.target_stage] = held
    return stages
