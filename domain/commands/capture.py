"""Capture: bring VMs that already run under management, as a configuration version and a deployment
that adopts them, in one atomic write (see domain/capture.py for what the VMs become)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.application import Outcome, StagekeeperApplication
from domain.capture import plan_capture
from domain.commands.capture_claims import Holder, take_claims
from domain.commands.configurations import CONFIGURATION_NAMES
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.descriptions import VmSelector
from domain.errors import ConflictError, ValidationError, VCenterObjectNotFoundError
from domain.names import NameClaim
from domain.paths import PoolPath
from domain.service import Service
from domain.text import check_reason, check_text
from domain.values import MAX_NAME, MAX_TEMPLATE_NAME, check_display_name

MAX_SELECTED = 100
MAX_FOLDER = 1024


@dataclass
class CaptureResult:
    """What a capture recorded, or with `dry_run`, would record (and what stops it)."""

    dry_run: bool
    configuration: dict[str, Any]  # id, name, version, networks, machines
    claims: list[dict[str, str]]
    refusals: list[dict[str, str]]
    deployment: Deployment | None = None
    notes: list[str] = field(default_factory=list)


def parse_selector(vms: object, folder: object, resource_pool: object) -> VmSelector:
    given = [
        name
        for name, value in (("vms", vms), ("folder", folder), ("resource_pool", resource_pool))
        if value is not None
    ]
    if len(given) != 1:
        raise ValidationError(
            "give exactly one of vms, folder or resource_pool", field=given[1] if given[1:] else "vms"
        )
    if vms is not None:
        if not isinstance(vms, list) or not 1 <= len(vms) <= MAX_SELECTED:
            raise ValidationError(f"vms must be a list of 1 to {MAX_SELECTED} VM ids or names", field="vms")
        entries = tuple(
            check_text(v, f"vms[{i}]", max_length=MAX_TEMPLATE_NAME, required=True) for i, v in enumerate(vms)
        )
        return VmSelector(vms=entries)
    if folder is not None:
        path = check_text(folder, "folder", max_length=MAX_FOLDER, required=True)
        parts = path.strip("/").split("/")
        if not path.startswith("/") or len(parts) < 2 or parts[1] != "vm" or "" in parts:
            raise ValidationError("folder must be a VM folder path like /DC0/vm or /DC0/vm/erp", field="folder")
        return VmSelector(folder=path.rstrip("/"))
    return VmSelector(resource_pool=PoolPath.parse(resource_pool, "resource_pool").path)


class CaptureCommands(StagekeeperApplication):
    def capture(
        self,
        service_id: UUID,
        stage: object,
        configuration: object,
        actor: str,
        vms: object = None,
        folder: object = None,
        resource_pool: object = None,
        reason: str | None = None,
        dry_run: object = False,
        holder: Holder | None = None,
    ) -> Outcome[CaptureResult]:
        """Capture running VMs into a configuration version and an adopted deployment of `stage`
        (nothing of the VMs changes; the process manager tags them after). `dry_run` records nothing."""
        reason = check_reason(reason)
        name = check_display_name(configuration, "configuration")
        if not isinstance(stage, str) or not stage:
            raise ValidationError("stage must name a stage of the service", field="stage")
        check_text(stage, "stage", max_length=4 * MAX_NAME)
        if not isinstance(dry_run, bool):
            raise ValidationError("dry_run must be true or false", field="dry_run")
        selector = parse_selector(vms, folder, resource_pool)
        self.load(Service, service_id, "service").stage(stage)  # unknown stage: 404 before asking vCenter
        try:
            described = self.vcenter.describe_vms(selector)
        except VCenterObjectNotFoundError as missing:  # a folder or pool vCenter does not have: that field
            missing.field = missing.field or ("folder" if selector.folder else "resource_pool")
            raise
        plan = plan_capture(described, "vms" if selector.vms else "folder" if selector.folder else "resource_pool")
        resolve = holder or (lambda _owner: None)

        def attempt() -> Outcome[CaptureResult]:
            service = self.load(Service, service_id, "service")
            target = service.stage(stage)
            found = self._configuration_named(service.id, name)
            if found is None:
                config = Configuration(
                    service_id=service.id, name=name, description="captured from vCenter",
                    networks=plan.networks, machines=plan.machines, actor=actor, reason=reason,
                )  # fmt: skip
                name_claim: list[Aggregate] = [self.claim_name(CONFIGURATION_NAMES, str(service.id), name, config.id)]
            else:
                config, name_claim = found, []
                config.record_capture(plan.networks, plan.machines, actor, reason)
            deployment = Deployment(
                service_id=service.id, configuration_id=config.id, configuration_version=config.version,
                configuration_name=config.name, stage=target["name"], resource_pool=target["resource_pool"],
                networks=config.networks, machines=config.machines, actor=actor, reason=reason,
            )  # fmt: skip
            claims, described, refused = take_claims(self, deployment.id, plan.adopted, resolve)
            refusals = plan.refusals + refused
            result = CaptureResult(
                dry_run=dry_run,
                configuration={"id": str(config.id), "name": config.name, "version": config.version,
                               "networks": config.networks, "machines": config.machines},
                claims=described,
                refusals=refusals,
            )  # fmt: skip
            if dry_run:
                return Outcome(result, self.head())
            if refusals:
                raise ConflictError(
                    "capture refused: " + "; ".join(f"{r['vm']} ({r['vm_id']}): {r['reason']}" for r in refusals),
                    field="vms",
                )
            deployment.adopt(plan.adopted, actor, reason)
            service.admit(deployment.id, target["name"], actor)
            result.deployment = deployment
            return Outcome(result, self.commit(config, *name_claim, deployment, service, *claims))

        return self.retrying(attempt)

    def _configuration_named(self, service_id: UUID, name: str) -> Configuration | None:
        try:
            claim: Aggregate = self.repository.get(NameClaim.id_for(CONFIGURATION_NAMES, str(service_id), name))
        except AggregateNotFoundError:
            return None
        assert isinstance(claim, NameClaim)
        if claim.owner_id is None:
            return None
        return self.load(Configuration, claim.owner_id, "configuration")
