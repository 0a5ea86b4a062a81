"""Composition of archive storage: the port's implementation for the vCenter driver in use."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from adapters.archive_filetier import FileTierAdapter
from adapters.settings import SettingsError
from adapters.vcenter.pyvmomi.archives import PyVmomiArchiveStorage
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.vcenter.simulated_archives import SimulatedArchiveStorage
from domain.archive import MAX_RETENTION_DAYS
from domain.archive_ports import ArchiveStorage, FileTierStore
from domain.ports import Clock, VCenterDriver
from domain.stagekeeper import Stagekeeper
from domain.values import normalise_key

ARCHIVE_PROCESS_NAME = "process:archives"


def make_archive_storage(vcenter: VCenterDriver) -> ArchiveStorage:
    if isinstance(vcenter, SimulatedVCenter):
        return SimulatedArchiveStorage(vcenter)
    if isinstance(vcenter, PyVmomiDriver):
        return PyVmomiArchiveStorage(vcenter)
    raise SettingsError(f"archives: no archive storage for the {getattr(vcenter, 'name', '?')} vCenter driver")


def archive_tiers(text: str) -> tuple[str, ...]:
    """STAGEKEEPER_ARCHIVE_TIERS, hot to cold: datastore names, or file:<directory> for a file tier."""
    tiers = tuple(t.strip() for t in text.split(",") if t.strip())
    if not tiers:
        raise SettingsError("STAGEKEEPER_ARCHIVE_TIERS must name at least one tier (a datastore, e.g. LocalDS_1)")
    if len(set(tiers)) != len(tiers):
        raise SettingsError("STAGEKEEPER_ARCHIVE_TIERS names a tier twice")
    for tier in tiers:
        if tier.startswith("file:"):
            if not tier[5:].startswith("/"):
                raise SettingsError(f"STAGEKEEPER_ARCHIVE_TIERS: {tier!r}: a file tier is file:<absolute directory>")
        elif "/" in tier or "[" in tier or "]" in tier:
            raise SettingsError(f"STAGEKEEPER_ARCHIVE_TIERS: {tier!r} is neither a datastore name nor file:<dir>")
    if tiers[0].startswith("file:"):
        raise SettingsError("STAGEKEEPER_ARCHIVE_TIERS: the first (hot) tier must be a datastore")
    return tiers


def archive_retention(text: str) -> dict[str, int]:
    """STAGEKEEPER_ARCHIVE_RETENTION: `stage=days` pairs, comma-separated (stage names case-folded)."""
    found: dict[str, int] = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        stage, _, days = pair.partition("=")
        if not stage.strip() or not days.strip().isdigit() or not 1 <= int(days) <= MAX_RETENTION_DAYS:
            raise SettingsError(
                f"STAGEKEEPER_ARCHIVE_RETENTION: {pair!r} is not stage=days (days 1 to {MAX_RETENTION_DAYS})"
            )
        found[normalise_key(stage.strip())] = int(days)
    return found


def file_tiers(tiers: tuple[str, ...]) -> dict[str, FileTierStore]:
    return {t: FileTierAdapter(Path(t[5:])) for t in tiers if t.startswith("file:")}


class ArchiveScheduler:
    """Runs the archive policy (moves to colder tiers, retention) from the process-manager thread, at
    most once per `every` of the Clock's time."""

    name = "archive-scheduler"

    def __init__(self, app: Stagekeeper, clock: Clock, move_after_days: int, every: timedelta) -> None:
        self.app = app
        self.clock = clock
        self.move_after_days = move_after_days
        self.every = every
        self._last: datetime | None = None

    def position(self) -> int:
        return 0  # follows the Clock, not the event log

    def catch_up(self, until: int | None = None) -> int:
        now = self.clock.now()
        if self._last is not None and now - self._last < self.every:
            return 0
        self._last = now
        done = self.app.archive_tick(now, self.move_after_days)
        return len(done["moved"]) + len(done["deleted"])
