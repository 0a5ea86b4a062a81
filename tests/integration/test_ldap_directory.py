"""The LDAP directory against a real OpenLDAP slapd: logins, both group styles, nested OUs,
hostile user names, and an unreachable directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.ldap_directory import LdapDirectory, LdapSettings
from domain.errors import UnavailableError
from scripts.slapd_harness import (
    ADMIN_GROUP,
    BIND_DN,
    BIND_PASSWORD,
    GROUP_BASE,
    OPERATORS,
    OWNERS,
    USER_BASE,
    Slapd,
)
from scripts.slapd_harness import start as start_slapd


def directory_for(url: str, **changes: object) -> LdapDirectory:
    settings = LdapSettings(url=url, bind_dn=BIND_DN, bind_password=BIND_PASSWORD, user_base=USER_BASE,
                            group_base=GROUP_BASE, timeout=2.0)  # fmt: skip
    return LdapDirectory(LdapSettings(**{**settings.__dict__, **changes}))


def test_users_in_nested_ous_log_in_and_get_both_group_styles(slapd: Slapd) -> None:
    directory = directory_for(slapd.url)
    oscar = directory.authenticate("oscar", "oscar-pw")  # ou=operations,ou=engineering,ou=people
    assert oscar is not None
    assert oscar.dn.startswith("uid=oscar,ou=operations,ou=engineering")
    assert oscar.groups == frozenset({OPERATORS})  # posixGroup / memberUid
    olivia = directory.authenticate("olivia", "olivia-pw")
    assert olivia is not None
    assert olivia.groups == frozenset({OWNERS})  # groupOfNames / member
    alice = directory.authenticate("alice", "alice-pw")
    assert alice is not None
    assert ADMIN_GROUP in alice.groups
    assert directory.groups("petra") == frozenset({OPERATORS})


def test_a_login_gets_the_directory_uid_whatever_spelling_was_typed(slapd: Slapd) -> None:
    directory = directory_for(slapd.url)
    alice = directory.authenticate("ALICE ", "alice-pw")
    assert alice is not None
    assert alice.username == "alice"
    assert ADMIN_GROUP in alice.groups
    oscar = directory.authenticate(" Oscar", "oscar-pw")  # posixGroup members are found by the uid
    assert oscar is not None
    assert (oscar.username, oscar.groups) == ("oscar", frozenset({OPERATORS}))


def test_wrong_passwords_unknown_users_and_empty_passwords_are_refused(slapd: Slapd) -> None:
    directory = directory_for(slapd.url)
    assert directory.authenticate("oscar", "wrong") is None
    assert directory.authenticate("mallory", "oscar-pw") is None
    assert directory.authenticate("oscar", "") is None  # an unauthenticated bind must not count


@pytest.mark.parametrize(
    "username",
    ["*", "o*", "oscar)(uid=*", "*)(|(uid=*", "oscar\x00", "\\2a", "uid=oscar,ou=people,dc=stagekeeper,dc=test"],
)
def test_hostile_user_names_never_match_anyone(slapd: Slapd, username: str) -> None:
    directory = directory_for(slapd.url)
    assert directory.authenticate(username, "oscar-pw") is None
    assert directory.authenticate(username, "alice-pw") is None


def test_a_user_name_with_dn_special_characters_logs_in(slapd: Slapd) -> None:
    user = directory_for(slapd.url).authenticate("o,brien", "tricky-pw")
    assert user is not None
    assert user.username == "o,brien"


def test_an_unreachable_directory_is_an_unavailable_error_not_a_refusal(tmp_path: Path) -> None:
    server = start_slapd(tmp_path)
    directory = directory_for(server.url, group_cache_seconds=0.0)
    assert directory.authenticate("victor", "victor-pw") is not None
    server.stop()
    with pytest.raises(UnavailableError, match="unreachable"):
        directory.authenticate("victor", "victor-pw")
    with pytest.raises(UnavailableError):
        directory.groups("victor")
    server.start()  # same data directory: the directory comes back as it was
    assert directory.authenticate("victor", "victor-pw") is not None
    server.stop()


def test_a_wrong_service_account_is_reported_as_unavailable(slapd: Slapd) -> None:
    with pytest.raises(UnavailableError, match="service account"):
        directory_for(slapd.url, bind_password="nope").authenticate("oscar", "oscar-pw")


def test_ldaps_and_starttls_verify_the_directory_certificate(tmp_path: Path) -> None:
    server = start_slapd(tmp_path, tls=True)
    try:
        trusted = directory_for(server.ldaps_url, ca_file=server.ca_file).authenticate("oscar", "oscar-pw")
        assert trusted is not None
        starttls = directory_for(server.url, start_tls=True, ca_file=server.ca_file).authenticate("oscar", "oscar-pw")
        assert starttls is not None
        # The system CAs do not know the test CA: a verifying client must refuse the server.
        with pytest.raises(UnavailableError):
            directory_for(server.ldaps_url).authenticate("oscar", "oscar-pw")
        with pytest.raises(UnavailableError):
            directory_for(server.url, start_tls=True).authenticate("oscar", "oscar-pw")
    finally:
        server.stop()
