"""Who may change a stage's change controls (review finding 7): owners only tighten."""

from __future__ import annotations

from typing import Any

import pytest

from domain.changecontrol import loosened, may_change_window
from domain.errors import ValidationError

CAB = "cn=cab,ou=groups,dc=example"
STAGE: dict[str, Any] = {
    "name": "prod",
    "approvals": {"required": 2, "group": CAB, "requester_may_approve": False, "expiry_hours": 24},
    "soak_seconds": 3600,
    "quota": {"vcpus": 20, "memory_mib": 65536},
}
POLICY = {"required": 2, "group": CAB, "expiry_hours": 24}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"approvals": None}, "approvals"),
        ({"approvals": {**POLICY, "required": 1}}, "approvals.required"),
        ({"approvals": {**POLICY, "group": "cn=mine,ou=groups,dc=example"}}, "approvals.group"),
        ({"approvals": {**POLICY, "requester_may_approve": True}}, "approvals.requester_may_approve"),
        ({"approvals": {"required": 2, "group": CAB}}, "approvals.expiry_hours"),
        ({"approvals": {**POLICY, "expiry_hours": 48}}, "approvals.expiry_hours"),
        ({"soak_seconds": 0}, "soak_seconds"),
        ({"soak_seconds": None}, "soak_seconds"),
        ({"quota": None}, "quota.memory_mib"),
        ({"quota": {"vcpus": 21, "memory_mib": 65536}}, "quota.vcpus"),
        ({"quota": {"vcpus": 20}}, "quota.memory_mib"),
    ],
)
def test_an_owner_may_not_loosen(changes: dict[str, Any], field: str) -> None:
    found = loosened(STAGE, changes)
    assert found is not None
    assert found[0] == field


@pytest.mark.parametrize(
    "changes",
    [
        {"approvals": {**POLICY, "required": 3, "group": CAB.upper(), "expiry_hours": 12}},
        {"soak_seconds": 7200},
        {"quota": {"vcpus": 10, "memory_mib": 65536, "disk_gib": 100}},
        {"restricted": True},
    ],
)
def test_an_owner_may_tighten_or_change_other_fields(changes: dict[str, Any]) -> None:
    assert loosened(STAGE, changes) is None


def test_a_stage_without_controls_may_get_any() -> None:
    assert loosened({"name": "int"}, {"approvals": {"required": 1, "group": CAB}, "quota": {"vcpus": 4}}) is None


def test_invalid_values_are_refused_as_the_command_would() -> None:
    with pytest.raises(ValidationError) as error:
        loosened(STAGE, {"approvals": {"required": 0, "group": CAB}})
    assert error.value.field == "approvals.required"


def test_windows_an_administrator_created_are_theirs() -> None:
    assert not may_change_window({"by_administrator": True}, is_admin=False)
    assert may_change_window({"by_administrator": True}, is_admin=True)
    assert may_change_window({"created_by": "olivia"}, is_admin=False)
