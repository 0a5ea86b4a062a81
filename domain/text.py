"""The one rule for text a user gives us: which characters may appear in which kind of field.

Every text field of every command goes through `check_text`. Refused everywhere: C0 controls
and DEL and C1 controls (PostgreSQL cannot store NUL, terminals and CSV readers act on the
others), bidirectional overrides/embeddings/isolates and marks (they make a name read
differently from what it is), zero-width characters (two names that look identical), Unicode
noncharacters and lone surrogates (not text; they break UTF-8 encoders). Multi-line fields
(descriptions, reasons) may also hold newline, carriage return and tab; names never.
"""

from __future__ import annotations

import re
import unicodedata

from domain.errors import ValidationError

MAX_REASON = 2048

# Noncharacters: U+FDD0-U+FDEF and the last two code points of every plane.
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
_NEVER = (
    "\x00-\x08\x0b\x0c\x0e-\x1f"  # C0 controls except tab, newline, carriage return
    "\x7f-\x9f"  # DEL and C1 controls
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u200b-\u200d\u2060\ufeff"  # zero-width space / non-joiner / joiner, word joiner, BOM
    "\ud800-\udfff" + _NONCHARACTERS  # lone surrogates (a valid str never holds a pair)
)
_FORBIDDEN_MULTILINE = re.compile(f"[{_NEVER}]")
_FORBIDDEN_SINGLE_LINE = re.compile(f"[{_NEVER}\t\n\r]")


def _describe(char: str) -> str:
    name = unicodedata.name(char, "") if not "\ud800" <= char <= "\udfff" else ""
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def check_text(
    value: object,
    field: str,
    *,
    max_length: int,
    multiline: bool = False,
    required: bool = False,
) -> str:
    """`value` as text of at most `max_length` characters holding no refused character.

    `multiline` fields (descriptions, reasons) may hold newline, carriage return and tab.
    `required` refuses empty or blank text.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be text", field=field)
    if len(value) > max_length:
        raise ValidationError(f"{field} must be at most {max_length} characters", field=field)
    if required and not value.strip():
        raise ValidationError(f"{field} must not be empty", field=field)
    bad = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_SINGLE_LINE).search(value)
    if bad is not None:
        if multiline:
            allowed = "; newline and tab are allowed"
        else:
            allowed = "; it is a single line" if bad.group() in "\t\n\r" else ""
        raise ValidationError(
            f"{field} must not contain control, bidirectional-override, zero-width or non-characters "
            f"(found {_describe(bad.group())} at position {bad.start()}{allowed})",
            field=field,
        )
    return value


def check_optional_text(value: object, field: str, *, max_length: int, multiline: bool = False) -> str | None:
    """None stays None; anything else must pass `check_text`."""
    return None if value is None else check_text(value, field, max_length=max_length, multiline=multiline)


def check_reason(reason: object, field: str = "reason") -> str | None:
    """Why a command was given (kept in the audit log): optional, multi-line, 2,048 characters."""
    return check_optional_text(reason, field, max_length=MAX_REASON, multiline=True)
