"""A stage's fence settings: all four or none, bounded VLANs, and how they are recorded."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import ValidationError
from domain.values import Stage

BASE: dict[str, Any] = {"name": "test", "resource_pool": "/DC0/host/DC0_C0/Resources/t"}
FENCE: dict[str, Any] = {
    "dvswitch": "DVS0", "vlan_range": {"first": 100, "last": 199}, "fence_gateway_template": "tpl-gw",
    "external_network": "VM Network",
}  # fmt: skip


def test_a_stage_without_fence_settings_records_none() -> None:
    stage = Stage.parse(BASE, "")
    assert not stage.fencing
    assert set(stage.to_dict()) == {"name", "resource_pool", "restricted", "ip_pools"}


def test_a_fencing_stage_records_its_settings() -> None:
    stage = Stage.parse({**BASE, **FENCE, "fence": "always", "copy_mode": "linked"}, "")
    assert stage.to_dict()["vlan_range"] == {"first": 100, "last": 199}
    assert (stage.to_dict()["fence"], stage.to_dict()["copy_mode"]) == ("always", "linked")


@pytest.mark.parametrize(
    ("change", "field"),  # a control character in a name is refused by the one text rule
    [
        ({"vlan_range": None}, "vlan_range"),
        ({"vlan_range": {"first": 0, "last": 5}}, "vlan_range.first"),
        ({"vlan_range": {"first": 10, "last": 4095}}, "vlan_range.last"),
        ({"vlan_range": {"first": 10, "last": 9}}, "vlan_range.last"),
        ({"vlan_range": {"first": 10}}, "vlan_range"),
        ({"fence_gateway_template": None}, "fence_gateway_template"),
        ({"fence": "sometimes"}, "fence"),
        ({"dvswitch": "DVS\u0000"}, "dvswitch"),
    ],
)
def test_fence_settings_are_checked(change: dict[str, Any], field: str) -> None:
    data = {**BASE, **FENCE, **change}
    with pytest.raises(ValidationError) as refused:
        Stage.parse(data, "")
    assert refused.value.field == field


def test_always_fencing_needs_the_settings() -> None:
    with pytest.raises(ValidationError) as refused:
        Stage.parse({**BASE, "fence": "always"}, "")
    assert refused.value.field == "fence"
