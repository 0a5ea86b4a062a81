"""Rules for local users and groups (for teams without a directory).

Local users sign in with a password (scrypt, domain/credentials.py) exactly where directory users
do; their groups are local groups, written in grants as the DN `cn=<group>,ou=local-groups,
o=stagekeeper` so that grants, roles and the permission checks treat them exactly as directory
groups. Members of the local group `administrators` are Stagekeeper administrators."""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass

from domain.errors import ValidationError
from domain.text import check_text

USERNAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
GROUP = re.compile(r"[a-z][a-z0-9._-]{0,63}")
GROUP_SUFFIX = ",ou=local-groups,o=stagekeeper"
ADMIN_GROUP = "administrators"
MAX_GROUPS = 32
MIN_PASSWORD = 12
MAX_PASSWORD = 256


@dataclass(frozen=True)
class LockoutPolicy:
    failures: int = 5
    window_seconds: float = 900.0
    lock_seconds: float = 900.0


def check_username(value: object, field: str = "username") -> str:
    text = check_text(value, field, max_length=64, required=True)
    if not USERNAME.fullmatch(text):
        raise ValidationError(
            f"{field} must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter", field=field
        )
    return text


def check_groups(value: object, field: str = "groups") -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_GROUPS:
        raise ValidationError(f"{field} must be a list of at most {MAX_GROUPS} group names", field=field)
    groups: list[str] = []
    for index, item in enumerate(value):
        name = check_text(item, f"{field}[{index}]", max_length=64, required=True)
        if not GROUP.fullmatch(name):
            raise ValidationError(
                f"{field}[{index}] must be lower-case letters, digits, '.', '_' or '-', starting with a letter",
                field=f"{field}[{index}]",
            )
        if name not in groups:
            groups.append(name)
    return sorted(groups)


def check_password(value: object, username: str, field: str = "password") -> str:
    """At least 12 characters, at most 256, one line of printable text, not built on the user name,
    and not a single character repeated or a run such as 'abcdefghijkl'."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    text = check_text(value, field, max_length=MAX_PASSWORD, required=True)
    if len(text) < MIN_PASSWORD:
        raise ValidationError(f"{field} must have at least {MIN_PASSWORD} characters", field=field)
    folded = unicodedata.normalize("NFKC", text).casefold()
    if username.casefold() in folded:
        raise ValidationError(f"{field} must not contain the user name", field=field)
    if len(set(folded)) < 4:
        raise ValidationError(f"{field} must use at least 4 different characters", field=field)
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(folded)}
    if steps in ({1}, {-1}):
        raise ValidationError(f"{field} must not be a run of consecutive characters", field=field)
    return text


def group_dn(group: str) -> str:
    return f"cn={group}{GROUP_SUFFIX}"


def group_of(dn: str) -> str | None:
    """The local group a DN names, or None when it is not a local group's DN."""
    lowered = dn.strip().casefold()
    if lowered.startswith("cn=") and lowered.endswith(GROUP_SUFFIX):
        name = lowered[3 : -len(GROUP_SUFFIX)]
        return name if GROUP.fullmatch(name) else None
    return None


def is_local_admin(groups: list[str]) -> bool:
    return ADMIN_GROUP in groups
