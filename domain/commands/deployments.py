"""Deployment commands (from users) and step records (from the process manager)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.application import Outcome, StagekeeperApplication
from domain.commands.addresses import ip_releases
from domain.commands.capture_claims import vm_releases
from domain.configuration import Configuration
from domain.deployment import UNDEPLOYED, Deployment
from domain.errors import InvalidTransitionError, ValidationError
from domain.service import Service
from domain.text import check_reason, check_text
from domain.values import MAX_NAME, check_version_number


class DeploymentCommands(StagekeeperApplication):
    def deployment(self, deployment_id: UUID, version: int | None = None) -> Deployment:
        return self.load(Deployment, deployment_id, "deployment", version=version)

    def deploy(
        self,
        configuration_id: UUID,
        stage: object,
        actor: str,
        reason: str | None = None,
        configuration_version: object = None,
    ) -> Outcome[Deployment]:
        """Instantiate a configuration version (default: the latest) in one stage of its service."""
        reason = check_reason(reason)
        if not isinstance(stage, str) or not stage:
            raise ValidationError("stage must name a stage of the configuration's service", field="stage")
        check_text(stage, "stage", max_length=4 * MAX_NAME)
        if configuration_version is not None and (
            isinstance(configuration_version, bool) or not isinstance(configuration_version, int)
        ):
            raise ValidationError("configuration_version must be an integer", field="configuration_version")

        def attempt() -> Outcome[Deployment]:
            configuration = self.load(Configuration, configuration_id, "configuration")
            configuration.check_active()
            if configuration_version is not None:
                check_version_number(configuration_version, configuration.version, "configuration_version")
                configuration = self.load(
                    Configuration, configuration_id, "configuration", version=configuration_version
                )
            if not configuration.machines:
                raise InvalidTransitionError(f"configuration '{configuration.name}' has no machines to deploy")
            service = self.load(Service, configuration.service_id, "service")
            target = service.stage(stage)
            deployment = Deployment(
                service_id=service.id,
                configuration_id=configuration.id,
                configuration_version=configuration.version,
                configuration_name=configuration.name,
                stage=target["name"],
                resource_pool=target["resource_pool"],
                networks=configuration.networks,
                machines=configuration.machines,
                actor=actor,
                reason=reason,
            )
            service.admit(deployment.id, target["name"], actor)
            return Outcome(deployment, self.commit(deployment, service))

        return self.retrying(attempt)

    def _address_releases(self, deployment: Deployment) -> list[Aggregate]:
        """The deployment's address claims, released (saved with its Undeployed event)."""
        released: list[Aggregate] = []
        for machine in deployment.machines:
            addressing = machine.get("addressing") or {}
            if addressing.get("ip"):
                released.extend(ip_releases(self, uuid5(deployment.id, machine["name"]), addressing))
            for nic in addressing.get("macs", []):
                released.extend(filter(None, [self.release_name("mac", nic["network"], nic["mac"])]))
        return released

    def promote(
        self,
        deployment_id: UUID,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Deployment]:
        """Move a deployed deployment to the next stage of its service."""
        reason = check_reason(reason)
        return self._move(deployment_id, +1, actor, reason, expected_version)

    def demote(
        self,
        deployment_id: UUID,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Deployment]:
        """Move a deployed deployment to the previous stage of its service."""
        reason = check_reason(reason)
        return self._move(deployment_id, -1, actor, reason, expected_version)

    def _move(
        self,
        deployment_id: UUID,
        step: int,
        actor: str,
        reason: str | None,
        expected_version: int | None,
    ) -> Outcome[Deployment]:
        def attempt() -> Outcome[Deployment]:
            deployment = self.deployment(deployment_id)
            self.check_version(deployment, expected_version, "deployment")
            service = self.load(Service, deployment.service_id, "service")
            target = service.next_stage(deployment.stage, step)
            direction = "promote" if step > 0 else "demote"
            deployment.request_move(target["name"], target["resource_pool"], direction, actor, reason)
            service.admit(deployment.id, target["name"], actor)
            return Outcome(deployment, self.commit(deployment, service))

        return self.retrying(attempt)

    def undeploy(
        self,
        deployment_id: UUID,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
        destroy_vms: object = None,
    ) -> Outcome[Deployment]:
        """Power off and destroy every VM of the deployment. A captured deployment's VMs are destroyed
        only with `destroy_vms=True`; otherwise Stagekeeper lets go of them (untags, leaves them running)."""
        reason = check_reason(reason)
        if destroy_vms is not None and not isinstance(destroy_vms, bool):
            raise ValidationError("destroy_vms must be true or false", field="destroy_vms")

        def step(deployment: Deployment) -> None:
            if destroy_vms is False or (deployment.captured and destroy_vms is not True):
                deployment.request_let_go(actor, reason)
            else:
                deployment.request_undeploy(actor, reason)

        return self.record_step(deployment_id, step, expected_version=expected_version)

    def retry_deployment(
        self,
        deployment_id: UUID,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Deployment]:
        """Provision a failed deployment again."""
        reason = check_reason(reason)
        return self.record_step(deployment_id, lambda d: d.retry(actor, reason), expected_version=expected_version)

    def record_step(
        self,
        deployment_id: UUID,
        step: Callable[[Deployment], None],
        expected_version: int | None = None,
    ) -> Outcome[Deployment]:
        """Apply one state change to a deployment and keep the service's occupancy in step with it."""

        def attempt() -> Outcome[Deployment]:
            deployment = self.deployment(deployment_id)
            self.check_version(deployment, expected_version, "deployment")
            before_stage, before_target = deployment.stage, deployment.target_stage
            step(deployment)
            others: list[Aggregate] = []
            released: str | bool | None = False
            if deployment.state == UNDEPLOYED:
                released = None  # every stage
                others.extend(self._address_releases(deployment))
                others.extend(vm_releases(self, deployment))
            elif deployment.stage != before_stage:
                released = before_stage  # a move completed
            elif before_target is not None and deployment.target_stage is None:
                released = before_target  # a move failed (rolled back or not)
            if released is not False:
                service = self.load(Service, deployment.service_id, "service")
                service.release(
                    deployment.id,
                    released if isinstance(released, str) else None,
                    actor="stagekeeper",
                )
                others.append(service)
            return Outcome(deployment, self.commit(deployment, *others))

        return self.retrying(attempt)
