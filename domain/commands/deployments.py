"""Deployment commands (from users) and step records (from the process manager)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain import governance, linkedcopies, quotas
from domain.application import Outcome, StagekeeperApplication
from domain.capture import check_deployable_from_templates
from domain.commands import fencing, swaps
from domain.commands.addresses import STALE_REFUSALS, ip_releases
from domain.commands.capture_claims import vm_releases
from domain.commands.leases import start_lease
from domain.commands.media import check_deployable_media
from domain.configuration import Configuration
from domain.deployment import DEPLOYED, UNDEPLOYED, Deployment
from domain.errors import (
    InvalidTransitionError,
    ValidationError,
)
from domain.names import NameClaim
from domain.service import Service
from domain.text import check_reason, check_text
from domain.values import MAX_NAME, MAX_TEMPLATE_NAME, check_version_number

MAX_SNAPSHOT_NAME = MAX_TEMPLATE_NAME  # vSphere's limit for a snapshot name


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
        fence: object = False,
        lease: object = None,
        expires_at: object = None,
    ) -> Outcome[Deployment]:
        """Instantiate a configuration version (default: the latest) in one stage of its service;
        `fence`: behind its own port groups and gateway (always so in a stage with fence "always");
        `lease` (ISO-8601 duration) or `expires_at`: when it is undeployed (default: the stage's lease)."""
        reason = check_reason(reason)
        check_fence_flag(fence)
        if not isinstance(stage, str) or not stage:
            raise ValidationError("stage must name a stage of the configuration's service", field="stage")
        check_text(stage, "stage", max_length=4 * MAX_NAME)
        if configuration_version is not None and (
            isinstance(configuration_version, bool) or not isinstance(configuration_version, int)
        ):
            raise ValidationError("configuration_version must be an integer", field="configuration_version")

        governance.admit(self, "deploy", configuration_id, actor, reason, stage=stage)

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
            check_deployable_from_templates(configuration.name, configuration.machines)
            check_deployable_media(self, configuration.name, configuration.machines)
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
            fence_if_asked(deployment, target, fence, actor)
            quotas.check(self.repository, service, target["name"], configuration.machines)
            start_lease(deployment, target, lease, expires_at, self.clock.now(), actor, reason)
            service.admit(deployment.id, target["name"], actor)
            return Outcome(deployment, self.commit(deployment, service))

        return self.retrying(attempt)

    def copy_deployment(
        self, source_id: UUID, stage: object, actor: str, reason: str | None = None, fence: object = False
    ) -> Outcome[Deployment]:
        """Copy the running VMs of a deployed deployment into a stage of its service (full clones,
        or linked clones from a snapshot taken for the copy, as the target stage says)."""
        reason = check_reason(reason)
        check_fence_flag(fence)
        if not isinstance(stage, str) or not stage:
            raise ValidationError("stage must name a stage of the deployment's service", field="stage")
        check_text(stage, "stage", max_length=4 * MAX_NAME)

        governance.admit(self, "copy", source_id, actor, reason, stage=stage, fence=fence)

        def attempt() -> Outcome[Deployment]:
            source = self.deployment(source_id)
            if source.state != DEPLOYED:
                raise InvalidTransitionError(
                    f"cannot copy a deployment that is {source.state} (allowed from: deployed)"
                )
            service = self.load(Service, source.service_id, "service")
            target = service.stage(stage)
            deployment = Deployment(
                service_id=service.id,
                configuration_id=source.configuration_id,
                configuration_version=source.configuration_version,
                configuration_name=source.configuration_name,
                stage=target["name"],
                resource_pool=target["resource_pool"],
                networks=source.networks,
                machines=[m["spec"] for m in source.machines],
                actor=actor,
                reason=reason,
            )
            deployment.record_copy_source(source, target.get("copy_mode") == "linked", actor, reason)
            quotas.check(self.repository, service, target["name"], [m["spec"] for m in source.machines])
            fence_if_asked(deployment, target, fence, actor)
            start_lease(deployment, target, None, None, self.clock.now(), actor, reason)
            service.admit(deployment.id, target["name"], actor)
            # Written with the source: a copy and a change of the source (undeploy, move) cannot both win.
            source.record_copy_made(deployment.id, target["name"], actor, reason)
            return Outcome(deployment, self.commit(deployment, service, source))

        return self.retrying(attempt)

    def snapshot_deployment(
        self, deployment_id: UUID, name: object, actor: str, reason: str | None = None
    ) -> Outcome[Deployment]:
        """Snapshot every machine of a deployed deployment under one name."""
        reason = check_reason(reason)
        governance.admit(self, "snapshot", deployment_id, actor, reason)
        snapshot = check_snapshot_name(name, "name")
        return self.record_step(deployment_id, lambda d: d.request_snapshot(snapshot, actor, reason))

    def revert_deployment(
        self, deployment_id: UUID, snapshot: object, actor: str, reason: str | None = None
    ) -> Outcome[Deployment]:
        """Revert every machine of a deployed deployment to one of its snapshots (then power them on)."""
        reason = check_reason(reason)
        governance.admit(self, "revert", deployment_id, actor, reason)
        name = check_snapshot_name(snapshot, "snapshot")
        return self.record_step(deployment_id, lambda d: d.request_revert(name, actor, reason))

    def swap_deployment(
        self,
        deployment_id: UUID,
        replaces: UUID,
        actor: str,
        keep_previous: object = True,
        reason: str | None = None,
        destroy_vms: object = None,
    ) -> Outcome[Deployment]:
        """Put a tested copy in the place of the deployment it copies: the copy moves into that
        stage and leaves its fence; the replaced one is powered off and kept (or undeployed: a
        captured one's VMs are let go of, powered off, unless `destroy_vms` is true)."""
        reason = check_reason(reason)
        if not isinstance(keep_previous, bool):
            raise ValidationError("keep_previous must be true or false", field="keep_previous")
        if destroy_vms is not None and not isinstance(destroy_vms, bool):
            raise ValidationError("destroy_vms must be true or false", field="destroy_vms")

        governance.admit(self, "swap", deployment_id, actor, reason, replaces=replaces, keep_previous=keep_previous,
                         destroy_vms=destroy_vms)  # fmt: skip

        def attempt() -> Outcome[Deployment]:
            incoming, outgoing = self.deployment(deployment_id), self.load(Deployment, replaces, "replaces")
            swaps.check_swap(incoming, outgoing)
            if not keep_previous:
                linkedcopies.check_destroyable(self.repository, outgoing)
            service = self.load(Service, incoming.service_id, "service")
            written = swaps.start(incoming, outgoing, service, keep_previous, False, actor, reason, destroy_vms)
            return Outcome(incoming, self.commit(*written))

        return self.retrying(attempt)

    def swap_back(self, deployment_id: UUID, actor: str, reason: str | None = None) -> Outcome[Deployment]:
        """Undo a swap while the replaced deployment is kept: it takes its place back."""
        reason = check_reason(reason)
        governance.admit(self, "swap-back", deployment_id, actor, reason)

        def attempt() -> Outcome[Deployment]:
            previous = self.deployment(deployment_id)
            current = self.deployment(swaps.previous_of(previous))
            if current.replaced != str(previous.id):
                raise InvalidTransitionError("the deployment that replaced this one has since been replaced")
            service = self.load(Service, previous.service_id, "service")
            written = swaps.start(previous, current, service, True, True, actor, reason)
            return Outcome(previous, self.commit(*written))

        return self.retrying(attempt)

    def complete_swap(self, deployment_id: UUID, actor: str) -> Outcome[Deployment]:
        """The swap's last write: both deployments, the claims, the service's occupancy."""

        def attempt() -> Outcome[Deployment]:
            incoming = self.deployment(deployment_id)
            assert incoming.swap is not None
            outgoing = self.deployment(UUID(incoming.swap["partner"]))
            before_stage = incoming.stage
            others: list[Aggregate] = []
            if incoming.fence is not None:
                others.extend(self._fence_releases(incoming))
            others.extend(swaps.claims_moving(self, outgoing, incoming))
            incoming.complete_swap_in(actor)
            outgoing.complete_swap_out(actor)
            if incoming.stage != before_stage:
                service = self.load(Service, incoming.service_id, "service")
                service.release(incoming.id, before_stage, actor="stagekeeper")
                others.append(service)
            return Outcome(incoming, self.commit(incoming, outgoing, *others))

        return self.retrying(attempt)

    def _address_releases(self, deployment: Deployment) -> list[Aggregate]:
        """The deployment's address claims, released (saved with its Undeployed event)."""
        released: list[Aggregate] = []
        if deployment.fence is not None:
            return self._fence_releases(deployment)
        for machine in deployment.machines:
            addressing = machine.get("addressing") or {}
            if addressing.get("ip"):
                released.extend(ip_releases(self, uuid5(deployment.id, machine["name"]), addressing))
            owner = uuid5(deployment.id, machine["name"])
            for nic in addressing.get("macs", []):
                # Only a claim this machine holds: a swap may have handed it to the copy that replaced it.
                claim = self._held("mac", nic["network"], nic["mac"], owner)
                if claim is not None:
                    claim.release()
                    released.append(claim)
        return released

    def _fence_releases(self, deployment: Deployment) -> list[Aggregate]:
        """A fence holds VLANs and external IPs (its machines' own addresses are not claimed)."""
        fence = deployment.fence
        assert fence is not None
        released: list[Aggregate] = []
        for network in fence["networks"]:
            owner = fencing.vlan_owner(deployment.id, network["network"])
            claim = self._held(fencing.VLAN_CLAIMS, fence["dvswitch"], str(network["vlan"]), owner)
            if claim is not None:
                claim.release()
                released.append(claim)
        gateway = fence["gateway"] or {}
        external = [(fencing.GATEWAY_MACHINE, gateway.get("external_ip"))]
        external += [(n["machine"], n["external_ip"]) for n in fence["nat"]]
        for machine, ip in external:
            if ip:
                owner = fencing.external_owner(deployment.id, machine)
                released.extend(ip_releases(self, owner, {"ip": ip, "cidr": None}))
        return released

    def _held(self, kind: str, scope: str, name: str, owner: UUID) -> NameClaim | None:
        try:
            claim: Aggregate = self.repository.get(NameClaim.id_for(kind, scope, name))
        except AggregateNotFoundError:
            return None
        return claim if isinstance(claim, NameClaim) and claim.owner_id == owner else None

    def promote(
        self,
        deployment_id: UUID,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Deployment]:
        """Move a deployed deployment to the next stage of its service."""
        reason = check_reason(reason)
        governance.admit(self, "promote", deployment_id, actor, reason)
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
        governance.admit(self, "demote", deployment_id, actor, reason)
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
            quotas.check(self.repository, service, target["name"], [m["spec"] for m in deployment.machines])
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
        governance.admit(self, "undeploy", deployment_id, actor, reason)
        if destroy_vms is not None and not isinstance(destroy_vms, bool):
            raise ValidationError("destroy_vms must be true or false", field="destroy_vms")

        def step(deployment: Deployment) -> None:
            if deployment.fence is not None and destroy_vms is False:
                raise ValidationError(
                    "destroy_vms: false cannot let go of a fenced deployment's VMs (their networks go with the fence)",
                    field="destroy_vms",
                )
            if destroy_vms is False or (deployment.captured and deployment.fence is None and destroy_vms is not True):
                deployment.request_let_go(actor, reason)
            else:
                linkedcopies.check_destroyable(self.repository, deployment)
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
        governance.admit(self, "retry", deployment_id, actor, reason)
        return self.record_step(deployment_id, lambda d: d.retry(actor, reason), expected_version=expected_version)

    def record_step(
        self,
        deployment_id: UUID,
        step: Callable[[Deployment], None],
        expected_version: int | None = None,
        in_hand: Deployment | None = None,
    ) -> Outcome[Deployment]:
        """Apply one state change to a deployment and keep the service's occupancy in step with it.

        `in_hand`: the deployment as the caller last saw it (e.g. the outcome of its previous step),
        tried first without reading it again. It is only a guess: if another write has moved the
        deployment on since, the commit loses the version race (or the step meets a state that is
        not the stored one) and the step is decided again on a fresh read. Do not use it afterwards:
        the outcome's deployment is the one to keep."""

        def attempt_on(deployment: Deployment) -> Outcome[Deployment]:
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

        if in_hand is not None and not in_hand.pending_events:
            try:
                return attempt_on(in_hand)
            except (IntegrityError, *STALE_REFUSALS):
                pass  # stale: decided again below, on the deployment as it is stored now
        return self.retrying(lambda: attempt_on(self.deployment(deployment_id)))


def check_fence_flag(fence: object) -> None:
    if not isinstance(fence, bool):
        raise ValidationError("fence must be true or false", field="fence")


def fence_if_asked(deployment: Deployment, stage: dict[str, Any], fence: object, actor: str) -> None:
    """Fence a new deployment when asked, or when its stage fences every deployment."""
    if not (fence or stage.get("fence") == "always"):
        return
    if not stage.get("dvswitch"):
        raise ValidationError(
            f"stage '{stage['name']}' has no fenced networks (set its dvswitch, vlan_range, "
            "fence_gateway_template and external_network)",
            field="fence",
        )
    deployment.request_fence(stage, actor)


def check_snapshot_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must name a snapshot (1-80 characters)", field=field)
    return check_text(value, field, max_length=MAX_SNAPSHOT_NAME)
