"""Value rules: every refusal names its field."""

from __future__ import annotations

import pytest

from domain.errors import ValidationError
from domain.values import Machine, PoolPath, Stage, check_display_name


def test_pool_paths_parse_into_datacenter_cluster_and_pools() -> None:
    path = PoolPath.parse("/DC0/host/DC0_C0/Resources/payroll/test")
    assert (path.datacenter, path.cluster, path.pools) == ("DC0", "DC0_C0", ("payroll", "test"))
    assert path.path == "/DC0/host/DC0_C0/Resources/payroll/test"


@pytest.mark.parametrize(
    "bad",
    ["", "DC0/host/C/Resources", "/DC0/vm/C/Resources", "/DC0/host/C/Pools/x", "/DC0/host//Resources", 7],
)
def test_malformed_pool_paths_are_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as error:
        PoolPath.parse(bad, "stages[2].resource_pool")
    assert error.value.field == "stages[2].resource_pool"


@pytest.mark.parametrize("bad", ["", " lead", "x" * 64, "a/b", None, 3])
def test_display_names_are_checked(bad: object) -> None:
    with pytest.raises(ValidationError):
        check_display_name(bad, "name")


def test_a_machine_gets_defaults_and_round_trips() -> None:
    machine = Machine.parse({"name": "web1", "template": "t"})
    assert (machine.cpus, machine.memory_mib, machine.clone_mode) == (1, 1024, "full")
    assert machine.customization.hostname == "web1"
    assert Machine.from_dict(machine.to_dict()) == machine


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "w", "template": "t", "cpus": True}, "machine.cpus"),
        ({"name": "w", "template": "t", "memory_mib": "lots"}, "machine.memory_mib"),
        ({"name": "w", "template": ""}, "machine.template"),
        ({"name": "w", "template": "t", "nics": [{"net": "x"}]}, "machine.nics[0].network"),
        ({"name": "w", "template": "t", "disks": "big"}, "machine.disks"),
        ({"name": "w", "template": "t", "customization": {"os": "beos"}}, "machine.customization.os"),
        (
            {"name": "w", "template": "t", "customization": {"ip_mode": "magic"}},
            "machine.customization.ip_mode",
        ),
    ],
)
def test_machine_refusals_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        Machine.parse(data)
    assert error.value.field == field


def test_stage_restricted_must_be_a_boolean() -> None:
    with pytest.raises(ValidationError) as error:
        Stage.parse({"name": "prod", "resource_pool": "/D/host/C/Resources", "restricted": "yes"}, "stages[0]")
    assert error.value.field == "stages[0].restricted"
