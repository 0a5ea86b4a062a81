"""The placement fields of a configuration's machine and of a stage, parsed (domain/placement.py uses them)."""

from __future__ import annotations

import re

from domain.errors import ValidationError
from domain.paths import PoolPath
from domain.text import check_text

MAX_EXTRA_POOLS = 8
MAX_LABEL = 63


def default_tier(machine: str) -> str:
    return re.sub(r"[-_]?\d+$", "", machine) or machine


def parse_machine_placement(value: object, field_name: str) -> dict[str, str] | None:
    """A machine's optional `placement`: {"tier": label, "affinity_group": label} (both optional)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"{field_name} must be an object with tier and/or affinity_group", field=field_name)
    unknown = set(value) - {"tier", "affinity_group"}
    if unknown:
        raise ValidationError(f"{field_name}: unknown field(s) {', '.join(sorted(unknown))}", field=field_name)
    parsed: dict[str, str] = {}
    for key in ("tier", "affinity_group"):
        if value.get(key) is not None:
            parsed[key] = check_text(value[key], f"{field_name}.{key}", max_length=MAX_LABEL, required=True)
    return parsed or None


def parse_extra_pools(value: object, main_pool: str, field_name: str) -> tuple[str, ...]:
    """A stage's other resource pools (each in another cluster, or the same one), deduplicated."""
    if not isinstance(value, list):
        raise ValidationError(f"{field_name} must be a list of resource pool paths", field=field_name)
    if len(value) > MAX_EXTRA_POOLS:
        raise ValidationError(f"{field_name} holds at most {MAX_EXTRA_POOLS} pools", field=field_name)
    pools: list[str] = []
    for i, raw in enumerate(value):
        path = PoolPath.parse(raw, f"{field_name}[{i}]").path
        if path == main_pool or path in pools:
            raise ValidationError(f"{field_name}[{i}]: resource pool '{path}' is given twice", field=field_name)
        pools.append(path)
    return tuple(pools)
