"""Drift commands: record what a check found, adopt reality, ask for a revert, list orphan VMs.

A check reads vCenter once (`VCenterDriver.managed_vms`) and writes, per deployment, the
differences that are new (DriftDetected) and those that went away (DriftResolved). Adopting a
CPU, memory or disk difference records it as a new version of the configuration (MachineChanged)
in the same write as the deployment's DriftAdopted; power, pool and host differences are recorded
on the deployment only. A revert is a request (DriftRevertRequested) the process manager carries out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain import drift
from domain.application import Outcome, StagekeeperApplication
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.drift_state import SPEC_FIELDS
from domain.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from domain.observations import VmObservation
from domain.text import check_reason, check_text
from domain.values import Machine

MAX_DRIFT_KEY = 200


def parse_drift_key(value: object) -> tuple[str, str]:
    """ "machine.field" (a machine name may hold dots; the field is after the last one)."""
    text = check_text(value, "field", max_length=MAX_DRIFT_KEY, required=True)
    machine, dot, field = text.rpartition(".")
    if not dot or not machine or field not in drift.FIELDS:
        raise ValidationError(
            f"field must be '<machine>.<field>' with field one of {', '.join(drift.FIELDS)}", field="field"
        )
    return machine, field


def apply_check(deployment: Deployment, observed: Iterable[VmObservation], actor: str) -> int:
    """Record on `deployment` the drift `observed` shows; returns how many events that took."""
    if not drift.checkable(deployment):
        return 0
    new, gone = drift.changes(deployment.drift, drift.differences(deployment, observed))
    for difference in new:
        deployment._drift_detected(
            machine=difference.machine, field=difference.field, expected=difference.expected,
            actual=difference.actual, actor=actor, reason=None,
        )  # fmt: skip
    for entry in gone:
        deployment._drift_resolved(machine=entry["machine"], field=entry["field"], actual=entry["expected"],
                                   actor=actor, reason=None)  # fmt: skip
    return len(new) + len(gone)


class DriftCommands(StagekeeperApplication):
    def record_drift(self, deployment_id: UUID, observed: list[VmObservation], actor: str) -> Outcome[Deployment]:
        """Record one deployment's drift as `observed` (one vCenter read shared by every deployment)."""

        def attempt() -> Outcome[Deployment]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            apply_check(deployment, observed, actor)
            return Outcome(deployment, self.commit(deployment))

        return self.retrying(attempt)

    def check_drift(self, deployment_id: UUID, actor: str) -> Outcome[Deployment]:
        """Compare the deployment with vCenter now and record what differs (asked by `actor`)."""
        deployment = self.load(Deployment, deployment_id, "deployment")
        if not drift.checkable(deployment):
            raise InvalidTransitionError(
                f"cannot check a deployment that is {deployment.state}: only a deployed one at rest is compared"
            )
        return self.record_drift(deployment_id, self.vcenter.managed_vms(), actor)

    def _open_drift(self, deployment: Deployment, key: object) -> dict[str, Any]:
        machine, field = parse_drift_key(key)
        entry = (deployment.drift or {}).get(f"{machine}.{field}")
        if entry is None:
            raise NotFoundError(f"deployment has no open drift '{machine}.{field}'", field="field")
        if entry["reverting"]:
            raise ConflictError(f"drift '{machine}.{field}' is being reverted", field="field")
        return entry

    def adopt_drift(self, deployment_id: UUID, key: object, actor: str, reason: object) -> Outcome[Deployment]:
        """Record vCenter's value as the truth (a new configuration version for CPU, memory, disks)."""
        checked = check_reason(reason)
        if checked is None:
            raise ValidationError("reason is required to adopt a drift", field="reason")

        def attempt() -> Outcome[Deployment]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            entry = self._open_drift(deployment, key)
            machine, field = entry["machine"], entry["field"]
            if field not in drift.ADOPTABLE:
                raise ValidationError(
                    f"field: a '{field}' drift cannot be adopted (it would need new address claims or a VM); "
                    "revert it, or undeploy", field="field",
                )  # fmt: skip
            if not drift.checkable(deployment):
                raise InvalidTransitionError(f"cannot adopt drift on a deployment that is {deployment.state}")
            version = deployment.configuration_version
            touched: list[Any] = [deployment]
            if field in SPEC_FIELDS:
                configuration = self.load(Configuration, deployment.configuration_id, "configuration")
                if configuration.version != deployment.configuration_version:
                    raise ConflictError(
                        f"the deployment runs version {deployment.configuration_version} of its configuration, "
                        f"which is at version {configuration.version} now: upgrade it first, then adopt",
                        field="field",
                    )
                configuration.check_active()
                current = dict(configuration.machine(machine))
                value = entry["actual"]
                current[field] = [{"size_gib": s} for s in value] if field == "disks" else value
                configuration.change_machine(machine, Machine.parse(current, "machine"), actor, checked)
                version = configuration.version
                touched.append(configuration)
            deployment._drift_adopted(
                machine=machine, field=field, value=entry["actual"], configuration_version=version, actor=actor,
                reason=checked,
            )  # fmt: skip
            return Outcome(deployment, self.commit(*touched))

        return self.retrying(attempt)

    def revert_drift(self, deployment_id: UUID, key: object, actor: str, reason: object) -> Outcome[Deployment]:
        """Ask the process manager to put the VM back as the history says."""
        checked = check_reason(reason)

        def attempt() -> Outcome[Deployment]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            entry = self._open_drift(deployment, key)
            if entry["field"] not in drift.REVERTIBLE:
                raise ValidationError(
                    f"field: a '{entry['field']}' drift cannot be reverted in place; retry or undeploy the deployment",
                    field="field",
                )
            if not drift.checkable(deployment):
                raise InvalidTransitionError(f"cannot revert drift on a deployment that is {deployment.state}")
            deployment._drift_revert_requested(
                machine=entry["machine"], field=entry["field"], expected=entry["expected"], actor=actor, reason=checked
            )
            return Outcome(deployment, self.commit(deployment))

        return self.retrying(attempt)

    def drift_orphans(self) -> list[dict[str, Any]]:
        """VMs tagged by Stagekeeper that no deployment's history holds (a read of vCenter)."""
        observed = self.vcenter.managed_vms()
        ids = {vm.deployment_id for vm in observed if vm.deployment_id is not None}
        found: dict[UUID, Deployment | None] = {}
        for deployment_id in ids:
            aggregate: object
            try:
                aggregate = self.repository.get(deployment_id)
            except AggregateNotFoundError:
                aggregate = None
            found[deployment_id] = aggregate if isinstance(aggregate, Deployment) else None
        return drift.orphans(observed, found)
