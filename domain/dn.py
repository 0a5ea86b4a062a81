"""LDAP distinguished names (RFC 4514 syntax), checked strictly before a grant records one.

The domain may not import ldap3, so the grammar is written here; it is the string form of
RFC 4514 section 3 (attribute types as descriptors or numeric OIDs, values as escaped strings
or #hex), plus optional spaces around separators as directories print them
(`cn=ops, ou=groups, dc=example, dc=com`).
"""

from __future__ import annotations

import re

from domain.errors import ValidationError
from domain.text import check_text

MAX_DN = 1024

_TYPE = r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)"
_PAIR = r"\\(?:[\\\"+,;<>= #]|[0-9A-Fa-f]{2})"
# Leading and trailing characters exclude space (and a leading '#'); any may be escaped.
_LEAD = rf"(?:[^ #\"+,;<>\\\x00]|{_PAIR})"
_MIDDLE = rf"(?:[^\"+,;<>\\\x00]|{_PAIR})"
_TRAIL = rf"(?:[^ \"+,;<>\\\x00]|{_PAIR})"
_VALUE = rf"(?:#(?:[0-9A-Fa-f]{{2}})+|{_LEAD}(?:{_MIDDLE}*{_TRAIL})?)"
_ATTRIBUTE = rf"{_TYPE} *= *{_VALUE}"
_RDN = rf"{_ATTRIBUTE}(?: *\+ *{_ATTRIBUTE})*"
_DN = re.compile(rf" *{_RDN}(?: *[,;] *{_RDN})* *")


def check_dn(value: object, field: str) -> str:
    """A distinguished name such as cn=payroll-ops,ou=groups,dc=example,dc=com (spaces trimmed)."""
    text = check_text(value, field, max_length=MAX_DN, required=True)
    if _DN.fullmatch(text) is None:
        raise ValidationError(
            f"{field} must be a distinguished name such as cn=payroll-ops,ou=groups,dc=example,dc=com",
            field=field,
        )
    return text.strip()
