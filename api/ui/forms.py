"""Form fields -> the command arguments the API takes, and the domain's errors -> form fields.

No rule is checked here: values are passed on as typed (numbers as numbers when they are
numbers, text otherwise), so the domain refuses bad input with the same message and field as
through the API, and the page puts that message next to the field.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData

from domain.errors import ValidationError

FORM = "_form"  # errors that belong to no single field


def text(form: FormData, key: str, default: str = "") -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else default


def optional(form: FormData, key: str) -> str | None:
    return text(form, key) or None


def number(form: FormData, key: str, default: int | None = None) -> object:
    """An integer when the field holds one; otherwise the text, for the domain to refuse by name."""
    raw = text(form, key)
    if not raw:
        return default
    return int(raw) if re.fullmatch(r"-?\d{1,12}", raw) else raw


def checked(form: FormData, key: str) -> bool:
    return form.get(key) in ("on", "true", "1", "yes")


def errors_for(error: ValidationError, prefix: str = "", fields: dict[str, str] | None = None) -> dict[str, str]:
    """{form field: message}. `prefix` is the domain's name for the form's object ("machine");
    `fields` maps a domain path (after the prefix) to a form field when their names differ."""
    path = error.field or ""
    if prefix and path.startswith(prefix + "."):
        path = path[len(prefix) + 1 :]
    for domain_path, form_field in (fields or {}).items():
        if path == domain_path or path.startswith(domain_path + ".") or path.startswith(domain_path + "["):
            return {form_field: error.message}
    return {path or FORM: error.message}


def machine_from_form(form: FormData) -> dict[str, Any]:
    disks = [{"size_gib": number(form, "disk_gib")}] if text(form, "disk_gib") else []
    customization: dict[str, Any] = {"os": text(form, "os", "linux"), "ip_mode": text(form, "ip_mode", "static-pool")}
    if text(form, "hostname"):
        customization["hostname"] = text(form, "hostname")
    return {
        "name": text(form, "name"),
        "template": text(form, "template"),
        "cpus": number(form, "cpus", 1),
        "memory_mib": number(form, "memory_mib", 1024),
        "clone_mode": text(form, "clone_mode", "full"),
        "disks": disks,
        "nics": [{"network": n} for n in form.getlist("nics") if isinstance(n, str) and n],
        "customization": customization,
        **({"iso": text(form, "iso")} if text(form, "iso") else {}),  # a media library name (CD-ROM)
    }


MACHINE_FIELDS = {"customization.hostname": "hostname", "customization.os": "os", "customization.ip_mode": "ip_mode",
                  "disks": "disk_gib", "nics": "nics", "customization": "os"}  # fmt: skip
