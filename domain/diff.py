"""Field-by-field differences between configuration definitions (for diffs, events and audit)."""

from __future__ import annotations

from typing import Any

from domain.values import normalise_key

Definition = dict[str, Any]


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {normalise_key(item["name"]): item for item in items}


def _fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    changed: dict[str, list[Any]] = {}
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            changed[key] = [before.get(key), after.get(key)]
    return changed


def _collection(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    old, new = _by_name(before), _by_name(after)
    return {
        "added": [new[k] for k in new if k not in old],
        "removed": [old[k] for k in old if k not in new],
        "changed": {new[k]["name"]: _fields(old[k], new[k]) for k in new if k in old and old[k] != new[k]},
    }


def diff_definitions(before: Definition, after: Definition) -> dict[str, Any]:
    """What changed from `before` to `after`: scalar fields as [before, after]; networks and
    machines as added / removed / changed (changed machines field by field)."""
    result: dict[str, Any] = {}
    for field in ("name", "description"):
        if before.get(field) != after.get(field):
            result[field] = [before.get(field), after.get(field)]
    for field in ("networks", "machines"):
        changes = _collection(before.get(field, []), after.get(field, []))
        if changes["added"] or changes["removed"] or changes["changed"]:
            result[field] = changes
    return result


def describe(changes: dict[str, Any]) -> str:
    """A one-line human summary of a diff: "cpus of web1: 2 -> 4; machines added: web3"."""
    parts: list[str] = []
    for field in ("name", "description"):
        if field in changes:
            a, b = changes[field]
            parts.append(f"{field}: {a!r} -> {b!r}")
    for field in ("networks", "machines"):
        section = changes.get(field)
        if not section:
            continue
        if section["added"]:
            parts.append(f"{field} added: {', '.join(i['name'] for i in section['added'])}")
        if section["removed"]:
            parts.append(f"{field} removed: {', '.join(i['name'] for i in section['removed'])}")
        for name, fields in section["changed"].items():
            described = ", ".join(f"{k} {short(v[0])} -> {short(v[1])}" for k, v in fields.items())
            parts.append(f"{field[:-1]} {name}: {described}")
    return "; ".join(parts) or "no change"


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
