"""Preview queries: what a promote, demote, swap or upgrade would change, refused for the same
reasons the command itself would be (409 naming why), and writing nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain import preview
from domain.application import StagekeeperApplication
from domain.commands import swaps
from domain.configuration import Configuration
from domain.deployment import DEPLOYED, UNDEPLOYED, Deployment
from domain.errors import InvalidTransitionError, ValidationError
from domain.service import Service
from domain.values import check_version_number


class PreviewQueries(StagekeeperApplication):
    def _deployed(self, deployment_id: UUID, action: str) -> Deployment:
        deployment = self.load(Deployment, deployment_id, "deployment")
        if deployment.state != DEPLOYED:
            raise InvalidTransitionError(f"cannot {action} a deployment that is {deployment.state}")
        return deployment

    def _running_in(self, service: Service, stage: str, configuration_id: UUID, besides: UUID) -> Deployment | None:
        """The newest live deployment of the configuration in `stage` (what a promote lands beside)."""
        found: list[Deployment] = []
        for raw in service.live_deployments(stage):
            if UUID(raw) == besides:
                continue
            other = self.load(Deployment, UUID(raw), "deployment")
            if other.configuration_id == configuration_id and other.state != UNDEPLOYED and other.replaced_by is None:
                found.append(other)
        return max(found, key=lambda d: d.created_on) if found else None

    def move_preview(self, deployment_id: UUID, direction: str = "promote") -> dict[str, Any]:
        """What promoting (or demoting) the deployment would change in the stage it moves into."""
        deployment = self._deployed(deployment_id, direction)
        service = self.load(Service, deployment.service_id, "service")
        target = service.next_stage(deployment.stage, +1 if direction == "promote" else -1)
        current = self._running_in(service, target["name"], deployment.configuration_id, deployment.id)
        return preview.promote_preview(deployment, target["name"], target["resource_pool"], current, direction)

    def swap_preview(self, deployment_id: UUID, replaces: UUID | None, keep_previous: bool = True) -> dict[str, Any]:
        """What swapping this copy in would change (`replaces`: by default the deployment it copies)."""
        incoming = self._deployed(deployment_id, "swap")
        if replaces is None:
            if incoming.copy_of is None:
                raise ValidationError("replaces: this deployment is no copy; name the deployment it replaces",
                                      field="replaces")  # fmt: skip
            replaces = UUID(incoming.copy_of["deployment_id"])
        outgoing = self.load(Deployment, replaces, "replaces")
        swaps.check_swap(incoming, outgoing)
        return preview.swap_preview(incoming, outgoing, keep_previous)

    def upgrade_preview(self, deployment_id: UUID, version: object) -> dict[str, Any]:
        """What upgrading the deployment in place to `version` would change."""
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValidationError("version must be an integer", field="version")
        deployment = self._deployed(deployment_id, "upgrade")
        latest = self.load(Configuration, deployment.configuration_id, "configuration")
        check_version_number(version, latest.version, "version")
        if version == deployment.configuration_version:
            raise InvalidTransitionError(f"the deployment already runs version {version} of its configuration")
        target = self.load(Configuration, deployment.configuration_id, "configuration", version=version)
        return preview.upgrade_preview(deployment, version, list(target.machines))
