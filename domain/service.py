"""The Service aggregate: an application with its own ordered lifecycle of stages.

The service is also the consistency boundary for "which deployments live in which stage", so a
stage cannot be removed while a deployment is being admitted into it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from domain.values import FENCE_KEYS, Stage, check_display_name, normalise_key


def legacy_stage_id(service_id: UUID | str, name: str) -> str:
    """The id of a stage created before stages had ids: derived from the service and the name the
    stage was created with (unique within the service then), so old stores need no migration."""
    return str(uuid5(UUID(str(service_id)), f"stage:{name}"))


def with_stage_id(service_id: UUID | str, stage: dict[str, Any]) -> dict[str, Any]:
    """A stage as recorded when it was created, with its id (read from the event, or derived)."""
    return {**stage, "id": stage.get("id") or legacy_stage_id(service_id, stage["name"])}


def new_stages(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stages about to be created: each gets a fresh id, carried in the event that creates it."""
    return [{**stage, "id": str(uuid4())} for stage in stages]


class Service(Aggregate):
    TOPIC = "stagekeeper:Service"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Service.Created"

    @event("Registered", topic="stagekeeper:Service.Registered")
    def __init__(
        self,
        name: str,
        description: str,
        stages: list[dict[str, Any]],
        actor: str,
        reason: str | None,
    ) -> None:
        self.name = name
        self.description = description
        self.stages: list[dict[str, Any]] = [with_stage_id(self.id, s) for s in stages]
        self.retired = False
        self.registered_by = actor
        # The version users compare (ETag / If-Match): it moves only with changes users make,
        # not with the background events (pools created, deployments admitted and released).
        self.definition_version = 1
        # stage key -> ids of deployments living there (requested..failed, not yet undeployed)
        self.occupancy: dict[str, list[str]] = {}
        # grant id -> {"id", "role", "user", "group", "stage"}
        self.grants: dict[str, dict[str, Any]] = {}

    # -- queries ---------------------------------------------------------------------------
    def stage(self, name: str) -> dict[str, Any]:
        key = normalise_key(name)
        for stage in self.stages:
            if normalise_key(stage["name"]) == key:
                return stage
        raise NotFoundError(f"service '{self.name}' has no stage '{name}'", field="stage")

    def stage_index(self, name: str) -> int:
        return self.stages.index(self.stage(name))

    def next_stage(self, name: str, step: int) -> dict[str, Any]:
        index = self.stage_index(name) + step
        if index < 0:
            raise InvalidTransitionError(
                f"'{self.stage(name)['name']}' is the first stage of '{self.name}': nothing to demote to"
            )
        if index >= len(self.stages):
            raise InvalidTransitionError(
                f"'{self.stage(name)['name']}' is the last stage of '{self.name}': nothing to promote to"
            )
        return self.stages[index]

    def live_deployments(self, stage_name: str) -> list[str]:
        return list(self.occupancy.get(normalise_key(stage_name), []))

    def _check_active(self) -> None:
        if self.retired:
            raise InvalidTransitionError(f"service '{self.name}' is retired")

    @staticmethod
    def check_stage_list(stages: list[Stage]) -> None:
        seen: set[str] = set()
        for i, stage in enumerate(stages):
            key = normalise_key(stage.name)
            if key in seen:
                raise ValidationError(f"stage name '{stage.name}' is used twice", field=f"stages[{i}].name")
            seen.add(key)

    # -- commands --------------------------------------------------------------------------
    def update_description(self, description: str, actor: str, reason: str | None) -> None:
        self._check_active()
        if description != self.description:
            self._description_changed(before=self.description, description=description, actor=actor, reason=reason)

    @event("DescriptionChanged", topic="stagekeeper:Service.DescriptionChanged")
    def _description_changed(self, before: str, description: str, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        self.description = description

    def add_stage(self, stage: Stage, position: int | None, actor: str, reason: str | None) -> None:
        self._check_active()
        if any(normalise_key(s["name"]) == normalise_key(stage.name) for s in self.stages):
            raise ConflictError(f"service '{self.name}' already has a stage '{stage.name}'", field="name")
        if position is None:
            position = len(self.stages)
        if not 0 <= position <= len(self.stages):
            raise ValidationError(f"position must be from 0 to {len(self.stages)}", field="position")
        [created] = new_stages([stage.to_dict()])
        self._stage_added(stage=created, position=position, actor=actor, reason=reason)

    @event("StageAdded", topic="stagekeeper:Service.StageAdded")
    def _stage_added(self, stage: dict[str, Any], position: int, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        self.stages.insert(position, with_stage_id(self.id, stage))

    def remove_stage(self, name: str, actor: str, reason: str | None) -> None:
        self._check_active()
        stage = self.stage(name)
        live = self.live_deployments(name)
        if live:
            raise ConflictError(
                f"stage '{stage['name']}' holds {len(live)} live deployment(s); undeploy or move them first",
                field="stage",
            )
        if len(self.stages) == 1:
            raise ConflictError("a service keeps at least one stage", field="stage")
        self._stage_removed(stage=stage["name"], actor=actor, reason=reason)

    @event("StageRemoved", topic="stagekeeper:Service.StageRemoved")
    def _stage_removed(self, stage: str, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        self.stages = [s for s in self.stages if s["name"] != stage]
        self.grants = {k: g for k, g in self.grants.items() if g["stage"] != stage}
        self.occupancy.pop(normalise_key(stage), None)

    def rename_stage(self, name: str, new_name: str, actor: str, reason: str | None) -> None:
        self._check_active()
        stage = self.stage(name)
        check_display_name(new_name, "name")
        if stage["name"] == new_name:
            return
        if normalise_key(new_name) != normalise_key(stage["name"]) and any(
            normalise_key(s["name"]) == normalise_key(new_name) for s in self.stages
        ):
            raise ConflictError(f"service '{self.name}' already has a stage '{new_name}'", field="name")
        self._stage_renamed(stage=stage["name"], new_name=new_name, actor=actor, reason=reason)

    @event("StageRenamed", topic="stagekeeper:Service.StageRenamed")
    def _stage_renamed(self, stage: str, new_name: str, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        for s in self.stages:
            if s["name"] == stage:
                s["name"] = new_name
        live = self.occupancy.pop(normalise_key(stage), None)
        if live is not None:
            self.occupancy[normalise_key(new_name)] = live
        for grant in self.grants.values():
            if grant["stage"] == stage:
                grant["stage"] = new_name

    def reorder_stages(self, order: list[str], actor: str, reason: str | None) -> None:
        self._check_active()
        keys = [normalise_key(n) if isinstance(n, str) else "" for n in order]
        current = [normalise_key(s["name"]) for s in self.stages]
        if sorted(keys) != sorted(current) or len(set(keys)) != len(keys):
            raise ValidationError(
                "order must list every stage of the service exactly once: " + ", ".join(s["name"] for s in self.stages),
                field="order",
            )
        names = [self.stage(n)["name"] for n in order]
        if keys != current:
            self._stages_reordered(before=[s["name"] for s in self.stages], order=names, actor=actor, reason=reason)

    @event("StagesReordered", topic="stagekeeper:Service.StagesReordered")
    def _stages_reordered(self, before: list[str], order: list[str], actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        by_name = {s["name"]: s for s in self.stages}
        self.stages = [by_name[n] for n in order]

    def map_stage(self, name: str, resource_pool: str, actor: str, reason: str | None) -> None:
        self._check_active()
        stage = self.stage(name)
        if stage["resource_pool"] == resource_pool:
            return
        live = self.live_deployments(name)
        if live:
            raise ConflictError(
                f"stage '{stage['name']}' holds {len(live)} live deployment(s); "
                "its resource pool cannot change under them",
                field="resource_pool",
            )
        self._stage_mapped(
            stage=stage["name"],
            before=stage["resource_pool"],
            resource_pool=resource_pool,
            actor=actor,
            reason=reason,
        )

    @event("StageMapped", topic="stagekeeper:Service.StageMapped")
    def _stage_mapped(self, stage: str, before: str, resource_pool: str, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        self.stage(stage)["resource_pool"] = resource_pool

    def set_restricted(self, name: str, restricted: bool, actor: str, reason: str | None) -> None:
        self._check_active()
        stage = self.stage(name)
        if stage["restricted"] != restricted:
            self._restriction_changed(stage=stage["name"], restricted=restricted, actor=actor, reason=reason)

    @event("StageRestrictionChanged", topic="stagekeeper:Service.StageRestrictionChanged")
    def _restriction_changed(self, stage: str, restricted: bool, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        self.stage(stage)["restricted"] = restricted

    def set_ip_pools(self, name: str, pools: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        self._check_active()
        stage = self.stage(name)
        before = stage.get("ip_pools", [])
        if before != pools:
            self._ip_pools_changed(stage=stage["name"], before=before, ip_pools=pools, actor=actor, reason=reason)

    @event("StageIpPoolsChanged", topic="stagekeeper:Service.StageIpPoolsChanged")
    def _ip_pools_changed(
        self, stage: str, before: list[dict[str, Any]], ip_pools: list[dict[str, Any]], actor: str, reason: str | None
    ) -> None:
        self.definition_version = self.version + 1
        self.stage(stage)["ip_pools"] = list(ip_pools)

    def set_extra_pools(self, name: str, pools: list[str], actor: str, reason: str | None) -> None:
        """Let placement use more pools (in other clusters) for the stage; refused while deployments live there."""
        self._check_active()
        stage = self.stage(name)
        before = list(stage.get("extra_pools", []))
        if before == pools:
            return
        live = self.live_deployments(name)
        if live:
            raise ConflictError(
                f"stage '{stage['name']}' holds {len(live)} live deployment(s); its pools cannot change under them",
                field="extra_pools",
            )
        self._extra_pools_changed(stage=stage["name"], before=before, extra_pools=pools, actor=actor, reason=reason)

    @event("StageExtraPoolsChanged", topic="stagekeeper:Service.StageExtraPoolsChanged")
    def _extra_pools_changed(
        self, stage: str, before: list[str], extra_pools: list[str], actor: str, reason: str | None
    ) -> None:
        self.definition_version = self.version + 1
        self.stage(stage)["extra_pools"] = list(extra_pools)

    def set_fencing(self, name: str, settings: dict[str, Any], actor: str, reason: str | None) -> None:
        """Replace the stage's fence settings (values.parse_fencing's result); deployments already
        fenced keep the settings they were fenced with."""
        self._check_active()
        stage = self.stage(name)
        before = {k: stage[k] for k in FENCE_KEYS if k in stage}
        after = {k: v for k, v in settings.items() if v is not None and not (k == "fence" and v == "optional")}
        after = {k: v for k, v in after.items() if not (k == "copy_mode" and v == "full")}
        if before != after:
            self._fencing_changed(stage=stage["name"], before=before, settings=after, actor=actor, reason=reason)

    @event("StageFencingChanged", topic="stagekeeper:Service.StageFencingChanged")
    def _fencing_changed(
        self, stage: str, before: dict[str, Any], settings: dict[str, Any], actor: str, reason: str | None
    ) -> None:
        self.definition_version = self.version + 1
        found = self.stage(stage)
        for key in FENCE_KEYS:
            found.pop(key, None)
        found.update(settings)

    def set_verification(self, name: str, verification: dict[str, Any] | None, actor: str, reason: str | None) -> None:
        """The checks run after a promote, copy, swap or upgrade into the stage (domain/verification.py)."""
        self._check_active()
        stage = self.stage(name)
        if stage.get("verification") != verification:
            self._verification_changed(
                stage=stage["name"], before=stage.get("verification"), verification=verification, actor=actor,
                reason=reason,
            )  # fmt: skip

    @event("StageVerificationChanged", topic="stagekeeper:Service.StageVerificationChanged")
    def _verification_changed(
        self, stage: str, before: dict[str, Any] | None, verification: dict[str, Any] | None, actor: str,
        reason: str | None,
    ) -> None:  # fmt: skip
        self.definition_version = self.version + 1
        self.stage(stage)["verification"] = verification

    def set_lease_policy(self, name: str, policy: dict[str, Any] | None, actor: str, reason: str | None) -> None:
        """Replace the stage's lease policy (domain/leases.py parse_policy's dict; None: nothing expires)."""
        self._check_active()
        stage = self.stage(name)
        if stage.get("lease_policy") != policy:
            self._lease_policy_changed(
                stage=stage["name"], before=stage.get("lease_policy"), policy=policy, actor=actor, reason=reason
            )

    @event("StageLeasePolicyChanged", topic="stagekeeper:Service.StageLeasePolicyChanged")
    def _lease_policy_changed(
        self, stage: str, before: dict[str, Any] | None, policy: dict[str, Any] | None, actor: str, reason: str | None
    ) -> None:
        self.definition_version = self.version + 1
        found = self.stage(stage)
        found.pop("lease_policy", None)
        if policy is not None:
            found["lease_policy"] = dict(policy)

    def grant(
        self,
        grant_id: UUID,
        role: str,
        user: str | None,
        group: str | None,
        stage: str | None,
        actor: str,
        reason: str | None,
    ) -> dict[str, Any]:
        self._check_active()
        if role not in ("viewer", "service-owner", "stage-operator"):
            raise ValidationError("role must be viewer, service-owner or stage-operator", field="role")
        if (user is None) == (group is None):
            raise ValidationError('give either "user" or "group"', field="user")
        if role == "stage-operator":
            if stage is None:
                raise ValidationError("stage-operator needs a stage", field="stage")
            stage = self.stage(stage)["name"]
        elif stage is not None:
            raise ValidationError(f"{role} is granted on the whole service, without a stage", field="stage")
        wanted = {"role": role, "user": user, "group": group, "stage": stage}
        for existing in self.grants.values():
            if {k: existing[k] for k in wanted} == wanted:
                raise ConflictError("this grant exists already", field="role")
        self._granted(grant_id=grant_id, role=role, user=user, group=group, stage=stage, actor=actor, reason=reason)
        return self.grants[str(grant_id)]

    @event("Granted", topic="stagekeeper:Service.Granted")
    def _granted(
        self,
        grant_id: UUID,
        role: str,
        user: str | None,
        group: str | None,
        stage: str | None,
        actor: str,
        reason: str | None,
    ) -> None:
        self.grants[str(grant_id)] = {
            "id": str(grant_id), "role": role, "user": user, "group": group, "stage": stage, "granted_by": actor,
        }  # fmt: skip

    def revoke(self, grant_id: str, actor: str, reason: str | None) -> dict[str, Any]:
        grant = self.grants.get(grant_id)
        if grant is None:
            raise NotFoundError(f"service '{self.name}' has no grant {grant_id}", field="grant_id")
        self._revoked(grant_id=grant_id, grant=grant, actor=actor, reason=reason)
        return grant

    @event("GrantRevoked", topic="stagekeeper:Service.GrantRevoked")
    def _revoked(self, grant_id: str, grant: dict[str, Any], actor: str, reason: str | None) -> None:
        self.grants.pop(grant_id, None)

    def rename(self, name: str, actor: str, reason: str | None) -> None:
        self._check_active()
        if name != self.name:
            self._renamed(before=self.name, name=name, actor=actor, reason=reason)

    @event("Renamed", topic="stagekeeper:Service.Renamed")
    def _renamed(self, before: str, name: str, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        self.name = name

    def record_configuration_retired(self, configuration_id: UUID, name: str, actor: str, reason: str | None) -> None:
        """Written with the configuration's own Retired event: a deploy of it racing the retirement
        writes this service too, so exactly one of the two commits."""
        self._configuration_retired(configuration_id=configuration_id, name=name, actor=actor, reason=reason)

    @event("ConfigurationRetired", topic="stagekeeper:Service.ConfigurationRetired")
    def _configuration_retired(self, configuration_id: UUID, name: str, actor: str, reason: str | None) -> None:
        pass

    def record_pool_created(self, stage: str, resource_pool: str, actor: str) -> None:
        self._pool_created(stage=stage, resource_pool=resource_pool, actor=actor, reason=None)

    @event("ResourcePoolCreated", topic="stagekeeper:Service.ResourcePoolCreated")
    def _pool_created(self, stage: str, resource_pool: str, actor: str, reason: str | None) -> None:
        pass

    def retire(self, actor: str, reason: str | None) -> None:
        self._check_active()
        live = sum(len(v) for v in self.occupancy.values())
        if live:
            raise ConflictError(f"service '{self.name}' still has {live} live deployment(s)")
        self._retired(actor=actor, reason=reason)

    @event("Retired", topic="stagekeeper:Service.Retired")
    def _retired(self, actor: str, reason: str | None) -> None:
        self.definition_version = self.version + 1
        self.retired = True

    # -- portability (domain/commands/portability.py) -------------------------------------------
    def record_import(self, head: str, records: int, actor: str, reason: str | None) -> None:
        self._imported(head=head, records=records, actor=actor, reason=reason)

    @event("Imported", topic="stagekeeper:Service.Imported")
    def _imported(self, head: str, records: int, actor: str, reason: str | None) -> None:
        """The service (and its configurations) came from an export file whose chain ends in `head`."""

    # -- occupancy, written together with the deployment's own events ------------------------
    def admit(self, deployment_id: UUID, stage: str, actor: str) -> None:
        self._check_active()
        name = self.stage(stage)["name"]
        self._admitted(deployment_id=deployment_id, stage=name, actor=actor, reason=None)

    @event("DeploymentAdmitted", topic="stagekeeper:Service.DeploymentAdmitted")
    def _admitted(self, deployment_id: UUID, stage: str, actor: str, reason: str | None) -> None:
        self.occupancy.setdefault(normalise_key(stage), []).append(str(deployment_id))

    def admit_upgrade(self, deployment_id: UUID, stage: str, version: int, actor: str, reason: str | None) -> None:
        """An upgrade into `stage` passed its quota: written with the deployment, so racing upgrades and
        deploys into the stage touch the service's version and one is decided again (review finding 12)."""
        self._check_active()
        name = self.stage(stage)["name"]
        self._upgrade_admitted(deployment_id=deployment_id, stage=name, version=version, actor=actor, reason=reason)

    @event("UpgradeAdmitted", topic="stagekeeper:Service.UpgradeAdmitted")
    def _upgrade_admitted(self, deployment_id: UUID, stage: str, version: int, actor: str, reason: str | None) -> None:
        pass

    def release(self, deployment_id: UUID, stage: str | None, actor: str) -> None:
        """Forget the deployment in `stage` (or everywhere when None); no-op when absent."""
        held = [
            s["name"]
            for s in self.stages
            if str(deployment_id) in self.occupancy.get(normalise_key(s["name"]), [])
            and (stage is None or normalise_key(s["name"]) == normalise_key(stage))
        ]
        for name in held:
            self._released(deployment_id=deployment_id, stage=name, actor=actor, reason=None)

    @event("DeploymentReleased", topic="stagekeeper:Service.DeploymentReleased")
    def _released(self, deployment_id: UUID, stage: str, actor: str, reason: str | None) -> None:
        ids = self.occupancy.get(normalise_key(stage), [])
        if str(deployment_id) in ids:
            ids.remove(str(deployment_id))

    # -- promotion policy (domain/policy.py parses it) ---------------------------------------------
    def set_promotion_policy(self, name: str, policy: dict[str, Any], actor: str, reason: str | None) -> None:
        """Approvals needed into the stage and its soak time; keys given replace, null removes."""
        self._check_active()
        stage = self.stage(name)
        before: dict[str, Any] = {k: stage[k] for k in ("approvals", "soak_seconds") if k in stage}
        after = {**before, **policy}
        after = {k: v for k, v in after.items() if v is not None}
        if before != after:
            self._policy_changed(stage=stage["name"], before=before, policy=after, actor=actor, reason=reason)

    @event("StagePolicyChanged", topic="stagekeeper:Service.StagePolicyChanged")
    def _policy_changed(
        self, stage: str, before: dict[str, Any], policy: dict[str, Any], actor: str, reason: str | None
    ) -> None:
        self.definition_version = self.version + 1
        found = self.stage(stage)
        found.pop("approvals", None)
        found.pop("soak_seconds", None)
        found.update(policy)

    # -- quotas (domain/quotas.py) ------------------------------------------------------------
    def set_quota(self, name: str, quota: dict[str, int] | None, actor: str, reason: str | None) -> None:
        """Set the stage's limits (quotas.parse_quota's result; None removes them)."""
        self._check_active()
        stage = self.stage(name)
        before = stage.get("quota")
        if before != quota:
            self._quota_changed(stage=stage["name"], before=before, quota=quota, actor=actor, reason=reason)

    @event("StageQuotaChanged", topic="stagekeeper:Service.StageQuotaChanged")
    def _quota_changed(
        self, stage: str, before: dict[str, int] | None, quota: dict[str, int] | None, actor: str, reason: str | None
    ) -> None:
        self.definition_version = self.version + 1
        found = self.stage(stage)
        found.pop("quota", None)
        if quota:
            found["quota"] = dict(quota)
