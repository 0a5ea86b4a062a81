"""The rules an imported aggregate must satisfy (finding 4 of docs/review-wave2.md).

An export file's hash chain proves that the file is whole, not who wrote it: anyone can edit a file
and compute its chain again. So every state that replaying a file's records reaches is checked with
the same parsers the commands apply before they write: names and descriptions (no control or bidi
characters, bounded), stages (pools, IP pools, fencing, extra pools), promotion policies, quotas,
verification settings, grants, and a configuration's networks and machines. The first record that
leads to a state the commands would have refused is named in the refusal."""

from __future__ import annotations

from typing import Any

from domain.configuration import Configuration
from domain.dn import check_dn
from domain.errors import ValidationError
from domain.permissions import ROLES
from domain.policy import POLICY_KEYS, parse_policy
from domain.quotas import parse_quota
from domain.service import Service
from domain.text import check_text
from domain.values import Machine, Network, Stage, check_description, check_display_name, normalise_key
from domain.verification import parse_verification


def _same(field: str, given: object, parsed: object) -> None:
    if given != parsed:
        raise ValidationError(f"{field} is not in the form the commands write", field=field)


def check_service(service: Service) -> None:
    _same("name", service.name, check_display_name(service.name, "name"))
    check_description(service.description)
    if not isinstance(service.stages, list) or not service.stages:
        raise ValidationError("stages must be a non-empty list", field="stages")
    names: set[str] = set()
    for i, stage in enumerate(service.stages):
        at = f"stages[{i}]"
        parsed = Stage.parse(stage, at)
        _same(f"{at}.name", stage["name"], parsed.name)
        _same(f"{at}.resource_pool", stage["resource_pool"], parsed.resource_pool)
        key = normalise_key(parsed.name)
        if key in names:
            raise ValidationError(f"stage name '{parsed.name}' is used twice", field=f"{at}.name")
        names.add(key)
        check_text(stage.get("id"), f"{at}.id", max_length=64, required=True)
        parse_policy({k: stage[k] for k in POLICY_KEYS if k in stage})
        parse_quota(stage.get("quota"), f"{at}.quota")
        parse_verification(stage.get("verification"), f"{at}.verification")
    for grant_id, grant in service.grants.items():
        at = f"grants[{grant_id}]"
        if not isinstance(grant, dict) or grant.get("role") not in ROLES:
            raise ValidationError(f"{at}.role must be one of {', '.join(ROLES)}", field=f"{at}.role")
        if grant.get("user") is None and grant.get("group") is None:
            raise ValidationError(f"{at} names neither a user nor a group", field=at)
        if grant.get("user") is not None:
            check_text(grant["user"], f"{at}.user", max_length=256, required=True)
        if grant.get("group") is not None:
            check_dn(grant["group"], f"{at}.group")
        if grant.get("stage") is not None:
            check_text(grant["stage"], f"{at}.stage", max_length=256, required=True)


def check_configuration(configuration: Configuration) -> None:
    _same("name", configuration.name, check_display_name(configuration.name, "name"))
    check_description(configuration.description)
    for field, items, parse in (
        ("networks", configuration.networks, Network.parse),
        ("machines", configuration.machines, Machine.parse),
    ):
        if not isinstance(items, list):
            raise ValidationError(f"{field} must be a list", field=field)
        seen: set[str] = set()
        for i, item in enumerate(items):
            name = parse(item, f"{field}[{i}]").name
            if normalise_key(name) in seen:
                raise ValidationError(f"{field}[{i}].name '{name}' is used twice", field=f"{field}[{i}].name")
            seen.add(normalise_key(name))


def check_imported(aggregate: Any) -> None:
    """Refuse (ValidationError) a replayed state that no command would have written."""
    if isinstance(aggregate, Service):
        check_service(aggregate)
    elif isinstance(aggregate, Configuration):
        check_configuration(aggregate)
