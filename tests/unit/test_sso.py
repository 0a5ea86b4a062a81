"""Single sign-on rules (domain/sso.py) and settings: who may sign in, with which groups."""

from __future__ import annotations

import pytest

from adapters.settings import Settings, SettingsError
from domain.errors import ValidationError
from domain.sso import SignInRefusedError, SsoPolicy, admin_from_groups, check_group

POLICY = SsoPolicy(allowed_groups=frozenset({"staff"}), admin_group="admins", default_group="everyone")


def test_a_grant_names_a_directory_group_by_dn_or_a_provider_group_with_the_oidc_prefix() -> None:
    assert check_group("cn=ops,ou=groups,dc=example,dc=com") == "cn=ops,ou=groups,dc=example,dc=com"
    assert check_group("oidc:payroll ops") == "oidc:payroll ops"
    assert check_group(" OIDC:Payroll") == "oidc:Payroll"
    for bad in ("payroll", "oidc:", "oidc:  ", "oidc:" + "x" * 257, "oidc:a\u202eb", 7):
        with pytest.raises(ValidationError) as error:
            check_group(bad, "group")
        assert error.value.field == "group"


def test_an_allowed_user_gets_prefixed_groups_the_default_group_and_admin_from_the_admin_group() -> None:
    user = POLICY.admit("sub-1", "carol", "Carol", ["staff", "admins"])
    assert user.user == "oidc:carol"
    assert user.display_name == "Carol"
    assert user.groups == {"oidc:staff", "oidc:admins", "oidc:everyone"}
    assert user.is_admin
    assert not POLICY.admit("sub-2", None, None, ["staff"]).is_admin
    assert POLICY.admit("sub-2", "", None, "staff").user == "oidc:sub-2"  # no username: the subject


def test_a_user_outside_the_allowed_groups_is_refused_by_name() -> None:
    with pytest.raises(SignInRefusedError) as refused:
        POLICY.admit("sub-3", "bob", "Bob", ["contractors"])
    assert refused.value.code == "group_not_allowed"
    assert refused.value.user == "oidc:bob"
    with pytest.raises(SignInRefusedError):
        POLICY.admit("sub-3", "bob", "Bob", None)  # no groups at all
    assert SsoPolicy().admit("s", "bob", None, None).groups == frozenset()  # empty list: anyone


def test_unusable_claims_are_a_bad_token() -> None:
    for groups in ({"staff": 1}, ["staff", 3], ["x"] * 257, ["a\x00b"]):
        with pytest.raises(SignInRefusedError) as refused:
            POLICY.admit("s", "bob", None, groups)
        assert refused.value.code == "bad_token"
    with pytest.raises(SignInRefusedError):
        POLICY.admit(None, None, None, ["staff"])


def test_a_token_is_admin_only_through_the_prefixed_admin_group() -> None:
    assert admin_from_groups({"oidc:admins"}, "admins")
    assert not admin_from_groups({"admins"}, "admins")
    assert not admin_from_groups({"oidc:admins"}, None)


def test_settings_need_the_client_and_refuse_plain_http_off_this_machine() -> None:
    with pytest.raises(SettingsError, match="STAGEKEEPER_OIDC_ISSUER needs STAGEKEEPER_OIDC_CLIENT_ID"):
        Settings.from_env({"STAGEKEEPER_OIDC_ISSUER": "https://idp.example.com"})
    base = {"STAGEKEEPER_OIDC_CLIENT_ID": "sk", "STAGEKEEPER_OIDC_CLIENT_SECRET": "s3cret"}
    with pytest.raises(SettingsError, match="STAGEKEEPER_OIDC_ISSUER must be an https:// URL"):
        Settings.from_env({**base, "STAGEKEEPER_OIDC_ISSUER": "http://idp.example.com"})
    settings = Settings.from_env(
        {**base, "STAGEKEEPER_OIDC_ISSUER": "http://127.0.0.1:8080", "STAGEKEEPER_OIDC_ALLOWED_GROUPS": " a, b ,,"}
    )
    assert settings.oidc_allowed == {"a", "b"}
    assert settings.oidc_groups_claim == "groups"
