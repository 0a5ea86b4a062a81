"""The composed application: every command family over one event store."""

from __future__ import annotations

from domain.commands.addresses import AddressCommands
from domain.commands.archives import ArchiveCommands
from domain.commands.capture import CaptureCommands
from domain.commands.catalogue import CatalogueCommands
from domain.commands.configurations import ConfigurationCommands
from domain.commands.consoles import ConsoleCommands
from domain.commands.deployments import DeploymentCommands
from domain.commands.drift import DriftCommands
from domain.commands.governance import GovernanceCommands
from domain.commands.leases import LeaseCommands
from domain.commands.media import MediaCommands
from domain.commands.portability import PortabilityCommands
from domain.commands.preview import PreviewQueries
from domain.commands.rebalance import RebalanceCommands
from domain.commands.services import ServiceCommands
from domain.commands.storage import StorageCommands
from domain.commands.upgrades import UpgradeCommands
from domain.commands.users import UserCommands
from domain.commands.webhooks import WebhookCommands


class Stagekeeper(
    ServiceCommands,
    ConfigurationCommands,
    DeploymentCommands,
    AddressCommands,
    CatalogueCommands,
    ConsoleCommands,
    CaptureCommands,
    UpgradeCommands,
    UserCommands,
    PortabilityCommands,
    GovernanceCommands,
    RebalanceCommands,
    ArchiveCommands,
    MediaCommands,
    StorageCommands,
    DriftCommands,
    PreviewQueries,
    LeaseCommands,
    WebhookCommands,
):
    """Commands and point-in-time reads of Stagekeeper (see docs/architecture.md)."""
