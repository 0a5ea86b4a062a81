"""Composition of archive storage: the port's implementation for the vCenter driver in use."""

from __future__ import annotations

from adapters.settings import SettingsError
from adapters.vcenter.pyvmomi.archives import PyVmomiArchiveStorage
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.vcenter.simulated_archives import SimulatedArchiveStorage
from domain.archive_ports import ArchiveStorage
from domain.ports import VCenterDriver

ARCHIVE_PROCESS_NAME = "process:archives"


def make_archive_storage(vcenter: VCenterDriver) -> ArchiveStorage:
    if isinstance(vcenter, SimulatedVCenter):
        return SimulatedArchiveStorage(vcenter)
    if isinstance(vcenter, PyVmomiDriver):
        return PyVmomiArchiveStorage(vcenter)
    raise SettingsError(f"archives: no archive storage for the {getattr(vcenter, 'name', '?')} vCenter driver")


def archive_tiers(text: str) -> tuple[str, ...]:
    """STAGEKEEPER_ARCHIVE_TIERS, hot to cold: datastore names (file:<dir> tiers are not served yet)."""
    tiers = tuple(t.strip() for t in text.split(",") if t.strip())
    if not tiers:
        raise SettingsError("STAGEKEEPER_ARCHIVE_TIERS must name at least one tier (a datastore, e.g. LocalDS_1)")
    for tier in tiers:
        if tier.startswith("file:") or "/" in tier or "[" in tier:
            raise SettingsError(f"STAGEKEEPER_ARCHIVE_TIERS: {tier!r}: only datastore tiers are served by this version")
    return tiers
