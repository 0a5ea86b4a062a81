"""Value rules: every refusal names its field."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from domain.dn import check_dn
from domain.errors import ValidationError
from domain.text import check_reason, check_text
from domain.values import (
    DEFAULT_CPUS,
    DEFAULT_MEMORY_MIB,
    Machine,
    PoolPath,
    Stage,
    check_description,
    check_display_name,
    check_version_number,
    normalise_key,
)


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


# -- the text rule (domain.text): one function, every field ------------------------------------
REFUSED = {
    "NUL": "\x00",
    "escape": "\x1b",
    "DEL": "\x7f",
    "C1 NEL": "\x85",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "right-to-left mark": "\u200f",
    "arabic letter mark": "\u061c",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "noncharacter": "\ufdd0",
    "plane-16 noncharacter": "\U0010ffff",
    "lone surrogate": "\ud800",
}


@pytest.mark.parametrize("char", REFUSED.values(), ids=REFUSED.keys())
def test_every_kind_of_text_refuses_hidden_and_control_characters(char: str) -> None:
    checks: list[Callable[[str], object]] = [
        lambda v: check_display_name(v, "name"),
        lambda v: check_description(v, "description"),
        check_reason,
        lambda v: check_text(v, "user", max_length=256),
    ]
    for check in checks:
        with pytest.raises(ValidationError) as error:
            check(f"pay{char}roll")
        assert error.value.field in ("name", "description", "reason", "user")
        assert f"U+{ord(char):04X}" in error.value.message


def test_descriptions_and_reasons_may_span_lines_but_names_never() -> None:
    assert check_description("line one\n\tline two\r\n") == "line one\n\tline two\r\n"
    assert check_reason("ticket 42:\nrollback") == "ticket 42:\nrollback"
    for name in ("dupname\n", "dup\tname", "dupname\r"):
        with pytest.raises(ValidationError):
            check_display_name(name, "name")
    with pytest.raises(ValidationError):
        check_text("a\nb", "user", max_length=256)


def test_reasons_are_limited_to_2048_characters() -> None:
    assert check_reason("r" * 2048) == "r" * 2048
    assert check_reason(None) is None
    with pytest.raises(ValidationError) as error:
        check_reason("r" * 2049)
    assert error.value.field == "reason"


# -- names ---------------------------------------------------------------------------------------
def test_names_accept_letters_of_any_script_nfc_normalised() -> None:
    assert check_display_name("Gehaltsabrechnung-Zürich", "name") == "Gehaltsabrechnung-Zürich"
    assert check_display_name("intégration", "name") == "intégration"
    assert check_display_name("Зарплата 2", "name") == "Зарплата 2"
    decomposed = unicodedata.normalize("NFD", "intégration")
    assert decomposed != "intégration"
    assert check_display_name(decomposed, "name") == "intégration"


def test_names_compare_case_folded_whatever_the_normal_form() -> None:
    assert normalise_key("INTÉGRATION") == normalise_key(unicodedata.normalize("NFD", "intégration"))
    assert normalise_key("Straße") == normalise_key("STRASSE")
    assert normalise_key("payroll") == "payroll"  # ASCII keys (and the claims made with them) unchanged


@pytest.mark.parametrize("bad", ["dupname\n", "-lead", "a\u200bb", "€uro", "x" * 64, "a/b"])
def test_names_refuse_what_is_not_a_letter_digit_or_separator(bad: str) -> None:
    with pytest.raises(ValidationError) as error:
        check_display_name(bad, "stages[0].name")
    assert error.value.field == "stages[0].name"
    assert "letters (any script)" in error.value.message or "U+" in error.value.message


@pytest.mark.parametrize("bad", ["web1\n", "web1\r", "\u212aelvin", "web-", "wéb1"])
def test_machine_names_stay_ascii_dns_labels(bad: str) -> None:
    with pytest.raises(ValidationError) as error:
        Machine.parse({"name": bad, "template": "t"})
    assert error.value.field == "machine.name"


def test_machine_text_fields_are_checked() -> None:
    with pytest.raises(ValidationError) as error:
        Machine.parse({"name": "web1", "template": "tpl\u202e"})
    assert error.value.field == "machine.template"
    with pytest.raises(ValidationError) as error:
        Machine.parse({"name": "web1", "template": "t", "nics": [{"network": "front\x00"}]})
    assert error.value.field == "machine.nics[0].network"
    with pytest.raises(ValidationError) as error:
        Machine.parse({"name": "web1", "template": "t", "customization": {"hostname": "web1\n"}})
    assert error.value.field == "machine.customization.hostname"


def test_a_machine_without_a_size_takes_its_templates() -> None:
    template = {"name": "t", "cpus": 4, "memory_mib": 8192}
    machine = Machine.parse({"name": "web1", "template": "t"}, "machine", template)
    assert (machine.cpus, machine.memory_mib) == (4, 8192)
    given = Machine.parse({"name": "web1", "template": "t", "cpus": 2}, "machine", template)
    assert (given.cpus, given.memory_mib) == (2, 8192)
    sizeless = Machine.parse({"name": "web1", "template": "t"}, "machine", {"cpus": 0, "memory_mib": 0})
    assert (sizeless.cpus, sizeless.memory_mib) == (DEFAULT_CPUS, DEFAULT_MEMORY_MIB)


# -- resource pool paths ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        "/DC0/host/DC0_C0/Resources/../../../etc",
        "/DC0/host/DC0_C0/Resources/./x",
        "/DC0/host/DC0_C0/Resources/pay\u202eroll",
        "/DC0/host/DC0_C0/Resources/pay\u200broll",
        "/DC0/host/DC0_C0/Resources/pay\nroll",
        "/DC0/host/DC0_C0/Resources/pay\x00",
        "/DC0/host/DC0_C0/Resources/" + "p" * 81,
        "/DC0/host/DC0_C0/Resources/a//b",
    ],
)
def test_pool_path_segments_are_names(bad: str) -> None:
    with pytest.raises(ValidationError) as error:
        PoolPath.parse(bad, "stages[1].resource_pool")
    assert error.value.field == "stages[1].resource_pool"


def test_pool_paths_keep_unicode_and_80_character_names() -> None:
    path = "/DC0/host/DC0_C0/Resources/Zürich/" + "p" * 80
    assert PoolPath.parse(path).path == path


# -- grants: directory group DNs ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "dn",
    [
        "cn=payroll-ops,ou=groups,dc=example,dc=com",
        "cn=ops, ou=groups, dc=example, dc=com",
        "CN=Müller\\, Hans,OU=Users,DC=example,DC=com",
        "uid=a+cn=b,dc=example",
        "1.3.6.1.4.1.1466.0=#04024869,dc=example",
    ],
)
def test_group_dns_are_accepted(dn: str) -> None:
    assert check_dn(dn, "group") == dn


@pytest.mark.parametrize("bad", ["not a dn", "cn=", "=ops", "cn=a,,dc=x", "cn=a,dc=x,", "cn=a\\", "cn=ops\x00,dc=x"])
def test_malformed_group_dns_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as error:
        check_dn(bad, "group")
    assert error.value.field == "group"


# -- versions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, 4, -1, True, "2", None])
def test_versions_outside_the_history_are_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as error:
        check_version_number(bad, 3, "from")
    assert error.value.field == "from"
    assert "from 1 to 3" in error.value.message
