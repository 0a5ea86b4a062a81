"""Stage quotas: the most vCPUs, memory and provisioned disk a stage may hold.

A quota is set on the stage (`Service.StageQuotaChanged`). Deploy, copy, promote/demote and upgrade
call `check` with the machines they would bring into the stage; the stage's holdings are those
of the deployments the service counts as living there (its occupancy), each by its recorded
machines (domain/usage.py). The command writes the service in the same save (admission), so two
commands racing past one quota both touch the service's version: one commits, the other is decided
again with the first one counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.application import Repository

from domain.deployment import Deployment
from domain.errors import ConflictError, ValidationError
from domain.service import Service
from domain.usage import Figures, allocation, total
from domain.values import MAX_CPUS, MAX_DISK_GIB, MAX_MEMORY_MIB, normalise_key

# What a quota may limit, with the largest value accepted and how a refusal names it.
LIMITS: dict[str, tuple[int, str]] = {
    "vcpus": (MAX_CPUS * 100_000, "vCPUs"),
    "memory_mib": (MAX_MEMORY_MIB * 100_000, "memory (MiB)"),
    "disk_gib": (MAX_DISK_GIB * 100_000, "provisioned disk (GiB)"),
}


class QuotaExceededError(ConflictError):
    """A command would bring a stage past one of its quotas (409)."""

    code = "quota_exceeded"


def parse_quota(value: object, field: str = "quota") -> dict[str, int] | None:
    """{"vcpus", "memory_mib", "disk_gib"}: each a whole number or null (no limit); None when no
    limit is left (the quota is removed)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be an object with vcpus, memory_mib and disk_gib", field=field)
    unknown = sorted(set(value) - set(LIMITS))
    if unknown:
        raise ValidationError(
            f"{field}: unknown limit(s) {', '.join(map(str, unknown))}", field=f"{field}.{unknown[0]}"
        )
    quota: dict[str, int] = {}
    for key, (high, _) in LIMITS.items():
        limit = value.get(key)
        if limit is None:
            continue
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= high:
            raise ValidationError(
                f"{field}.{key} must be a whole number from 0 to {high}, or null", field=f"{field}.{key}"
            )
        quota[key] = limit
    return quota or None


def in_use(repository: Repository[UUID], service: Service, stage: str, leaving_out: UUID | None = None) -> Figures:
    """What the deployments living in the stage hold there (without `leaving_out`)."""
    key = normalise_key(stage)
    held = Figures()
    for deployment_id in service.live_deployments(stage):
        if leaving_out is not None and deployment_id == str(leaving_out):
            continue
        deployment: Deployment = repository.get(UUID(deployment_id))
        for name, figures in held_for_quota(deployment).items():
            if normalise_key(name) == key:
                held += figures
    return held


def held_for_quota(deployment: Deployment) -> dict[str, Figures]:
    """What the deployment counts for against quotas: what it holds now (domain/usage.py), and, while
    an upgrade is under way, the larger of that and its target version's machines per figure, since
    the process manager may bring it to either (review finding 12)."""
    held = allocation(deployment)
    if deployment.upgrade is None:
        return held
    target = total(deployment.upgrade["machines"])
    return {stage: _larger(figures, target) for stage, figures in held.items()}


def _larger(one: Figures, other: Figures) -> Figures:
    return Figures(*(max(getattr(one, f), getattr(other, f)) for f in ("vcpus", "memory_mib", "disk_gib", "machines")))


def excess(quota: Mapping[str, int], requested: Figures, held: Figures) -> list[str]:
    """Each limit the request would pass, as a sentence naming the quota and the figures."""
    found = []
    for key, (_, label) in LIMITS.items():
        limit = quota.get(key)
        if limit is None:
            continue
        wanted, used = getattr(requested, key), getattr(held, key)
        if used + wanted > limit:
            found.append(f"{label}: requested {wanted}, in use {used}, limit {limit}")
    return found


def check(
    repository: Repository[UUID],
    service: Service,
    stage: str,
    machines: Iterable[Mapping[str, Any]],
    leaving_out: UUID | None = None,
) -> None:
    """Refuse (QuotaExceededError) bringing `machines` into `stage` when that passes its quota.
    `leaving_out`: the deployment the command changes (an upgrade replaces what it holds there)."""
    quota = service.stage(stage).get("quota")
    if not quota:
        return
    requested = total(machines)
    over = excess(quota, requested, in_use(repository, service, stage, leaving_out))
    if over:
        name = service.stage(stage)["name"]
        first = next(k for k in LIMITS if any(s.startswith(LIMITS[k][1]) for s in over[:1]))
        raise QuotaExceededError(
            f"stage '{name}' of '{service.name}' would exceed its quota on " + "; ".join(over),
            field=f"quota.{first}",
        )
