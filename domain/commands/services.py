"""Service and stage commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain import leases, quotas
from domain.application import Outcome
from domain.commands.placement import Placement, PlacementCommands
from domain.deployment import Deployment
from domain.errors import ValidationError
from domain.placement_rules import parse_extra_pools
from domain.policy import POLICY_KEYS, parse_policy
from domain.ports import PoolStatus
from domain.service import Service, new_stages
from domain.sso import check_group
from domain.text import check_reason, check_text
from domain.values import (
    FENCE_KEYS,
    MAX_NAME,
    PoolPath,
    Stage,
    check_description,
    check_display_name,
    normalise_key,
    parse_fencing,
    parse_ip_pools,
)
from domain.verification import parse_verification

SERVICE_NAMES = "service"
# The caller's permission check, run on the service a command is about to change (see `reads`).
Authorize = Callable[[Service], None] | None


class ServiceCommands(PlacementCommands):
    def check_pool(self, path: str, field: str) -> str:
        """Validate a pool path against the inventory: unknown datacenter/cluster is refused."""
        pool = PoolPath.parse(path, field)
        status = self.vcenter.inspect_pool(pool.path)
        if status is PoolStatus.UNKNOWN_DATACENTER:
            raise ValidationError(f"{field}: datacenter '{pool.datacenter}' does not exist in vCenter", field=field)
        if status is PoolStatus.UNKNOWN_CLUSTER:
            raise ValidationError(
                f"{field}: cluster '{pool.cluster}' does not exist in datacenter '{pool.datacenter}'",
                field=field,
            )
        return pool.path

    def check_fencing(self, stage: dict[str, Any], at: str = "") -> None:
        """A fencing stage's settings name things that exist: its gateway template in the catalogue
        (as machines' templates), its distributed switch, and its external network in the datacenter
        of its resource pool. `at` prefixes the fields named in refusals."""
        if not stage.get("dvswitch"):
            return
        template = stage["fence_gateway_template"]
        if self.catalogue().get(template) is None:
            raise ValidationError(
                f"{at}fence_gateway_template: '{template}' is not in the template catalogue "
                "(import it with POST /api/v1/templates/import)",
                field=f"{at}fence_gateway_template",
            )
        if not self.vcenter.has_switch(stage["dvswitch"]):
            raise ValidationError(
                f"{at}dvswitch: distributed switch '{stage['dvswitch']}' does not exist in vCenter",
                field=f"{at}dvswitch",
            )
        datacenter = PoolPath.parse(stage["resource_pool"], f"{at}resource_pool").datacenter
        if not self.vcenter.has_network(datacenter, stage["external_network"]):
            raise ValidationError(
                f"{at}external_network: network '{stage['external_network']}' does not exist in "
                f"datacenter '{datacenter}'",
                field=f"{at}external_network",
            )

    def service(self, service_id: UUID, version: int | None = None) -> Service:
        return self.load(Service, service_id, "service", version=version)

    def register_service(
        self,
        name: object,
        description: object,
        stages: object,
        actor: str,
        reason: str | None = None,
    ) -> Outcome[Service]:
        """Register a service with its ordered stages; the name is unique case-insensitively."""
        reason = check_reason(reason)
        name = check_display_name(name, "name")
        description = check_description(description)
        if not isinstance(stages, list) or not stages:
            raise ValidationError("stages must be a non-empty list", field="stages")
        parsed = [Stage.parse(s, f"stages[{i}]") for i, s in enumerate(stages)]
        Service.check_stage_list(parsed)
        for i, stage in enumerate(parsed):
            self.check_pool(stage.resource_pool, f"stages[{i}].resource_pool")
            self.check_fencing(stage.to_dict(), f"stages[{i}].")
            for j, extra in enumerate(stage.extra_pools):
                self.check_pool(extra, f"stages[{i}].extra_pools[{j}]")

        def attempt() -> Outcome[Service]:
            service = Service(
                name=name,
                description=description,
                stages=new_stages([s.to_dict() for s in parsed]),
                actor=actor,
                reason=reason,
            )
            claim = self.claim_name(SERVICE_NAMES, "", name, service.id)
            placement = self.placement_writes(service, None, "stages", "stages")
            return Outcome(service, self.commit(service, claim, *placement))

        return self.retrying(attempt)

    def _service_reads(self, service_id: UUID, authorize: Authorize) -> Callable[[], Service]:
        return self.reads(lambda: self.service(service_id), authorize)

    def _change_service(
        self, service_id: UUID, expected_version: int | None, change: Any, read: Callable[[], Service]
    ) -> Outcome[Service]:
        def attempt() -> Outcome[Service]:
            service = read()
            self.check_version(service, expected_version, "service")
            before = Placement.of(service)
            change(service)
            return Outcome(service, self.commit(service, *self.placement_writes(service, before)))

        return self.retrying(attempt)

    def update_service(
        self,
        service_id: UUID,
        description: object,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
        name: object = None,
        authorize: Authorize = None,
    ) -> Outcome[Service]:
        """Change a service's description and/or rename it (None: unchanged), in one write.

        A rename moves the unique-name claim in the same write: the new name is claimed (409 if
        another service holds it) and the old one released, so no other service can slip in.
        `authorize(service)` (the caller's permission check) runs on each read of the service.
        """
        read = self._service_reads(service_id, authorize)
        reason = check_reason(reason)
        text = check_description(description) if description is not None else None
        new_name = check_display_name(name, "name") if name is not None else None

        def attempt() -> Outcome[Service]:
            service = read()
            self.check_version(service, expected_version, "service")
            before = Placement.of(service)
            claims: list[Aggregate] = []
            if text is not None:
                service.update_description(text, actor, reason)
            if new_name is not None and new_name != service.name:
                claims.append(self.claim_name(SERVICE_NAMES, "", new_name, service.id))
                if normalise_key(new_name) != normalise_key(service.name):
                    claims.extend(filter(None, [self.release_name(SERVICE_NAMES, "", service.name)]))
                service.rename(new_name, actor, reason)
            claims.extend(self.placement_writes(service, before))
            return Outcome(service, self.commit(service, *claims))

        return self.retrying(attempt)

    def add_stage(
        self,
        service_id: UUID,
        stage: object,
        position: object,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
        authorize: Authorize = None,
    ) -> Outcome[Service]:
        """Add a stage (at the end, or at `position`)."""
        read = self._service_reads(service_id, authorize)
        reason = check_reason(reason)
        # Fields of the body are top-level, so name them without a "stage." prefix.
        parsed = Stage.parse(stage, "")
        self.check_pool(parsed.resource_pool, "resource_pool")
        self.check_fencing(parsed.to_dict())
        for j, extra in enumerate(parsed.extra_pools):
            self.check_pool(extra, f"extra_pools[{j}]")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
            raise ValidationError("position must be an integer", field="position")
        return self._change_service(
            service_id, expected_version, lambda s: s.add_stage(parsed, position, actor, reason), read
        )

    def remove_stage(
        self,
        service_id: UUID,
        stage: str,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
        authorize: Authorize = None,
    ) -> Outcome[Service]:
        """Remove a stage that holds no live deployment."""
        read = self._service_reads(service_id, authorize)
        reason = check_reason(reason)
        return self._change_service(service_id, expected_version, lambda s: s.remove_stage(stage, actor, reason), read)

    def update_stage(
        self,
        service_id: UUID,
        stage: str,
        changes: dict[str, Any],
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Service]:
        """Rename a stage, map it to another pool, or change its restricted flag, in one write."""
        reason = check_reason(reason)
        known = {
            "name", "resource_pool", "restricted", "ip_pools", "quota", "extra_pools", "verification", "lease_policy",
            *FENCE_KEYS, *POLICY_KEYS,
        }  # fmt: skip
        unknown = set(changes) - known
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        new_name = check_display_name(changes["name"], "name") if "name" in changes else None
        pool = self.check_pool(changes["resource_pool"], "resource_pool") if "resource_pool" in changes else None
        ip_pools = list(parse_ip_pools(changes["ip_pools"], "ip_pools")) if "ip_pools" in changes else None
        quota = quotas.parse_quota(changes["quota"]) if "quota" in changes else None
        extra_pools = self._extra_pools(changes)
        verifying = "verification" in changes
        verification = parse_verification(changes["verification"]) if verifying else None
        lease_policy = leases.parse_policy(changes["lease_policy"]) if "lease_policy" in changes else None
        restricted = changes.get("restricted")
        if "restricted" in changes and not isinstance(restricted, bool):
            raise ValidationError("restricted must be true or false", field="restricted")
        policy = parse_policy(changes)

        def attempt() -> Outcome[Service]:
            service = self.service(service_id)
            self.check_version(service, expected_version, "service")
            current = service.stage(stage)["name"]
            before = Placement.of(service)
            if pool is not None:
                service.map_stage(current, pool, actor, reason)
            if isinstance(restricted, bool):
                service.set_restricted(current, restricted, actor, reason)
            if ip_pools is not None:
                service.set_ip_pools(current, ip_pools, actor, reason)
            if "quota" in changes:
                service.set_quota(current, quota, actor, reason)
            if extra_pools is not None:
                main = pool or service.stage(current)["resource_pool"]
                extra = list(parse_extra_pools(extra_pools, main, "extra_pools"))
                service.set_extra_pools(current, extra, actor, reason)
            if verifying:
                service.set_verification(current, verification, actor, reason)
            if "lease_policy" in changes:
                service.set_lease_policy(current, lease_policy.to_dict() if lease_policy else None, actor, reason)
            if set(FENCE_KEYS).intersection(changes):
                # Fence settings change together: what is not given stays as the stage has it.
                merged = {k: service.stage(current).get(k) for k in FENCE_KEYS} | {
                    k: v for k, v in changes.items() if k in FENCE_KEYS
                }
                fencing = parse_fencing(merged)
                self.check_fencing({**fencing, "resource_pool": pool or service.stage(current)["resource_pool"]})
                service.set_fencing(current, fencing, actor, reason)
            if policy:
                service.set_promotion_policy(current, policy, actor, reason)
            followers: list[Deployment] = []
            if new_name is not None and new_name != current:
                service.rename_stage(current, new_name, actor, reason)
                # Live deployments carry their stage's name: rename it on them in the same write.
                for deployment_id in service.live_deployments(new_name):
                    deployment = self.load(Deployment, UUID(deployment_id), "deployment")
                    deployment.follow_stage_rename(current, new_name, actor, reason)
                    followers.append(deployment)
            placement = self.placement_writes(service, before)
            return Outcome(service, self.commit(service, *followers, *placement))

        return self.retrying(attempt)

    def _extra_pools(self, changes: dict[str, Any]) -> list[str] | None:
        """A stage's other pools (placement across clusters), each checked against the inventory."""
        if "extra_pools" not in changes:
            return None
        given = parse_extra_pools(changes["extra_pools"], "", "extra_pools")
        return [self.check_pool(path, f"extra_pools[{j}]") for j, path in enumerate(given)]

    def reorder_stages(
        self,
        service_id: UUID,
        order: object,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
        authorize: Authorize = None,
    ) -> Outcome[Service]:
        """Set the order of the service's stages (the lifecycle promotions follow)."""
        read = self._service_reads(service_id, authorize)
        reason = check_reason(reason)
        if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
            raise ValidationError("order must be a list of stage names", field="order")
        for i, name in enumerate(order):
            check_text(name, f"order[{i}]", max_length=4 * MAX_NAME)
        return self._change_service(
            service_id, expected_version, lambda s: s.reorder_stages(order, actor, reason), read
        )

    def retire_service(
        self,
        service_id: UUID,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
        authorize: Authorize = None,
    ) -> Outcome[Service]:
        """Retire a service with no live deployments; its name becomes free again."""
        read = self._service_reads(service_id, authorize)
        reason = check_reason(reason)

        def attempt() -> Outcome[Service]:
            service = read()
            self.check_version(service, expected_version, "service")
            before = Placement.of(service)
            service.retire(actor, reason)
            claim = self.release_name(SERVICE_NAMES, "", service.name)
            placement = self.placement_writes(service, before)
            return Outcome(service, self.commit(service, *([claim] if claim else []), *placement))

        return self.retrying(attempt)

    def grant_role(
        self,
        service_id: UUID,
        role: object,
        user: object,
        group: object,
        stage: object,
        actor: str,
        reason: str | None = None,
    ) -> Outcome[dict[str, Any]]:
        """Grant a role on a service (stage-operator: on one stage) to a directory user or group."""
        reason = check_reason(reason)
        for name, value in (("role", role), ("user", user), ("stage", stage)):
            if value is not None:
                check_text(value, name, max_length=256, required=True)
        if group is not None:
            group = check_group(group, "group")

        def attempt() -> Outcome[dict[str, Any]]:
            service = self.service(service_id)
            grant = service.grant(uuid4(), str(role), _opt(user), _opt(group), _opt(stage), actor, reason)
            return Outcome(dict(grant), self.commit(service))

        return self.retrying(attempt)

    def revoke_grant(
        self, service_id: UUID, grant_id: str, actor: str, reason: str | None = None
    ) -> Outcome[dict[str, Any]]:
        """Withdraw a grant."""
        reason = check_reason(reason)

        def attempt() -> Outcome[dict[str, Any]]:
            service = self.service(service_id)
            grant = service.revoke(grant_id, actor, reason)
            return Outcome(dict(grant), self.commit(service))

        return self.retrying(attempt)

    def record_pool_created(self, service_id: UUID, stage: str, path: str) -> int:
        def attempt() -> Outcome[None]:
            service = self.service(service_id)
            service.record_pool_created(stage, path, actor="stagekeeper")
            return Outcome(None, self.commit(service))

        return self.retrying(attempt).position


def _opt(value: object) -> str | None:
    return value.strip() if isinstance(value, str) else None
