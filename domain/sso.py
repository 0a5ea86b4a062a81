"""Single sign-on (OpenID Connect) rules: who may sign in, which groups and admin status they get.

A provider's group names are not distinguished names, so they enter Stagekeeper with the prefix
`oidc:` (`oidc:payroll ops`), both in a signed-in user's groups and in the grants that name them;
the user is `oidc:<preferred_username or sub>`. Nothing a provider sends can then be mistaken for a
directory group or a local user (whose names cannot hold ':'). Grant names are checked in
`check_group`, the one place that says what a group may be.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.dn import check_dn
from domain.errors import ValidationError
from domain.text import check_text

PREFIX = "oidc:"
MAX_NAME = 256
MAX_GROUPS = 256


def check_group(value: object, field: str = "group") -> str:
    """A grant's group: a distinguished name (directory and local groups) or `oidc:<group>` as an
    OpenID Connect provider sends it (1 to 256 characters after the prefix)."""
    if isinstance(value, str) and value.strip().lower().startswith(PREFIX):
        text = check_text(value, field, max_length=MAX_NAME + len(PREFIX), required=True).strip()
        if not text[len(PREFIX) :].strip():
            raise ValidationError(
                f"{field} must name a provider group after 'oidc:', e.g. oidc:payroll-ops", field=field
            )
        return PREFIX + text[len(PREFIX) :]
    return check_dn(value, field)


class SignInRefusedError(Exception):
    """The provider authenticated someone Stagekeeper does not let in (or sent what it cannot use)."""

    def __init__(self, code: str, message: str, user: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.user = user


@dataclass(frozen=True)
class SsoUser:
    user: str
    display_name: str
    groups: frozenset[str]  # with the oidc: prefix, as grants name them
    is_admin: bool


@dataclass(frozen=True)
class SsoPolicy:
    """STAGEKEEPER_OIDC_ALLOWED_GROUPS (empty: anyone the provider authenticates),
    _ADMIN_GROUP and _DEFAULT_GROUP, in the provider's own spelling (no prefix)."""

    allowed_groups: frozenset[str] = frozenset()
    admin_group: str | None = None
    default_group: str | None = None

    def admit(self, subject: object, username: object, name: object, groups: object) -> SsoUser:
        """The user the ID token's claims describe, or SignInRefusedError."""
        login = username if isinstance(username, str) and username.strip() else subject
        try:
            login = check_text(login, "sub", max_length=MAX_NAME, required=True).strip()
        except ValidationError as error:
            raise SignInRefusedError("bad_token", f"the ID token names no usable user: {error.message}") from None
        user = PREFIX + login
        sent = _groups(groups, user)
        if self.allowed_groups and not (sent & self.allowed_groups):
            raise SignInRefusedError(
                "group_not_allowed",
                f"{user} is not in any group allowed to sign in ({', '.join(sorted(self.allowed_groups))})",
                user,
            )
        held = sent | ({self.default_group} if self.default_group else set())
        display = name.strip()[:MAX_NAME] if isinstance(name, str) and name.strip() else login
        return SsoUser(
            user=user,
            display_name=display,
            groups=frozenset(PREFIX + g for g in held),
            is_admin=self.admin_group is not None and self.admin_group in sent,
        )


def is_sso_user(user: str) -> bool:
    return user.startswith(PREFIX)


def admin_from_groups(groups: Iterable[str], admin_group: str | None) -> bool:
    """Whether prefixed `groups` (a token's, kept from its sign-in) include the admin group."""
    return admin_group is not None and PREFIX + admin_group in set(groups)


def _groups(claim: object, user: str) -> frozenset[str]:
    if claim is None:
        return frozenset()
    values = [claim] if isinstance(claim, str) else claim
    if not isinstance(values, list) or len(values) > MAX_GROUPS:
        raise SignInRefusedError("bad_token", f"the groups claim must be a list of at most {MAX_GROUPS} names", user)
    groups: set[str] = set()
    for item in values:
        try:
            groups.add(check_text(item, "groups", max_length=MAX_NAME, required=True).strip())
        except ValidationError as error:
            raise SignInRefusedError(
                "bad_token", f"a group in the ID token is unusable: {error.message}", user
            ) from None
    return frozenset(groups)
