"""Local user names, groups and password rules (domain/local_users.py)."""

from __future__ import annotations

import pytest

from domain.errors import ValidationError
from domain.local_users import check_groups, check_password, check_username, group_dn, group_of


@pytest.mark.parametrize("name", ["olivia", "o.brien", "svc-deploy_2", "a" * 64])
def test_good_user_names(name: str) -> None:
    assert check_username(name) == name


@pytest.mark.parametrize("name", ["", "Olivia", "1abc", "a b", "a" * 65, "olivia\x00", "x\u202e", "ol/ivia"])
def test_bad_user_names_name_the_field(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_username(name)
    assert refused.value.field == "username"


def test_groups_are_deduplicated_sorted_and_bounded() -> None:
    assert check_groups(["payroll-team", "administrators", "payroll-team"]) == ["administrators", "payroll-team"]
    with pytest.raises(ValidationError, match="at most 32"):
        check_groups([f"g{i}" for i in range(33)])
    with pytest.raises(ValidationError) as refused:
        check_groups(["ok", "Not OK"])
    assert refused.value.field == "groups[1]"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short-one", "at least 12"),
        ("olivia-is-the-best", "user name"),
        ("OLIVIA2026!!secret", "user name"),
        ("aaaaaaaaaaaaaaaa", "4 different"),
        ("abababababab", "4 different"),
        ("abcdefghijklmn", "consecutive"),
        ("zyxwvutsrqpo", "consecutive"),
        ("tab\tinside-password", "control"),
        ("x" * 257, "at most 256"),
    ],
)
def test_weak_or_malformed_passwords_are_refused(password: str, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule):
        check_password(password, "olivia")


def test_a_good_password() -> None:
    assert check_password("correct horse battery", "olivia") == "correct horse battery"


def test_group_dns_round_trip_and_only_name_local_groups() -> None:
    dn = group_dn("payroll-team")
    assert dn == "cn=payroll-team,ou=local-groups,o=stagekeeper"
    assert group_of(dn) == "payroll-team"
    assert group_of("CN=Payroll-Team,OU=Local-Groups,O=Stagekeeper") == "payroll-team"
    assert group_of("cn=payroll-team,ou=groups,dc=example,dc=org") is None
