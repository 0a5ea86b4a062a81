"""Value objects and the validation rules they enforce.

Values travel inside events as plain dicts (JSON-friendly, stable on disk); the dataclasses
here are how the domain reads and checks them. Every text goes through domain.text.check_text.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from domain.addressing import MAX_POOLS, parse_ip_pool
from domain.errors import ValidationError
from domain.media import check_medium_name
from domain.paths import PoolPath
from domain.placement_rules import parse_extra_pools, parse_machine_placement
from domain.startorder import StartOrder
from domain.text import check_text

__all__ = ["PoolPath"]  # re-exported: it used to live here

CloneMode = Literal["full", "linked"]
OsFamily = Literal["linux", "windows"]
IpMode = Literal["static-pool", "dhcp"]

CLONE_MODES: tuple[str, ...] = ("full", "linked")
OS_FAMILIES: tuple[str, ...] = ("linux", "windows")
IP_MODES: tuple[str, ...] = ("static-pool", "dhcp")

MAX_NAME = 63
# Machine names become hostnames and VM names: DNS labels, ASCII only. re.ASCII, because with
# IGNORECASE a Unicode pattern lets [a-z] match the Kelvin sign and the long s.
_MACHINE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE | re.ASCII)
_NAME_PUNCTUATION = frozenset(" ._-")

MAX_CPUS = 768
DEFAULT_CPUS = 1
DEFAULT_MEMORY_MIB = 1024
MAX_TEMPLATE_NAME = 80  # vSphere's limit for inventory names
MAX_MEMORY_MIB = 24 * 1024 * 1024
MAX_DISK_GIB = 62 * 1024
WINDOWS_HOSTNAME_MAX = 15


def check_display_name(value: object, field_name: str) -> str:
    """A service, stage, configuration or network name, NFC-normalised: 1-63 letters (any
    script), digits, spaces, '.', '_' or '-', starting with a letter or digit."""
    rule = (
        f"{field_name} must be 1-{MAX_NAME} characters: letters (any script), digits, spaces, "
        "'.', '_' or '-', starting with a letter or digit"
    )
    # Decomposed input may be longer than its NFC form: allow for that before normalising.
    if isinstance(value, str) and len(value) > 4 * MAX_NAME:
        raise ValidationError(rule, field=field_name)
    text = unicodedata.normalize("NFC", check_text(value, field_name, max_length=4 * MAX_NAME))
    if not 1 <= len(text) <= MAX_NAME or not _is_name(text):
        raise ValidationError(rule, field=field_name)
    return text


def _is_name(text: str) -> bool:
    # Letters, marks (accents that do not compose) and digits of any script.
    if unicodedata.category(text[0])[0] not in "LN":
        return False
    return all(c in _NAME_PUNCTUATION or unicodedata.category(c)[0] in "LMN" for c in text)


def check_machine_name(value: object, field_name: str) -> str:
    """A machine name doubles as the default hostname, so it follows RFC 1123 label rules."""
    if not isinstance(value, str) or not _MACHINE_NAME.fullmatch(value):
        raise ValidationError(
            f"{field_name} must be a DNS label: 1-63 ASCII letters, digits or '-', not starting or ending with '-'",
            field=field_name,
        )
    return value


def check_version_number(value: object, latest: int, field_name: str) -> int:
    """A version of an object whose newest version is `latest` (the same answer on every route)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= latest:
        raise ValidationError(f"{field_name} must be a version from 1 to {latest}", field=field_name)
    return value


def check_int(value: object, field_name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{field_name} must be an integer from {low} to {high}", field=field_name)
    return value


def check_choice(value: object, field_name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(f"{field_name} must be one of {', '.join(choices)}", field=field_name)
    assert isinstance(value, str)
    return value


def normalise_key(name: str) -> str:
    """Names are unique case-insensitively and whatever their Unicode normal form; this is the
    comparison key (identity on ASCII, so keys of names stored before stay the same)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


FENCE_MODES: tuple[str, ...] = ("optional", "always")
COPY_MODES: tuple[str, ...] = ("full", "linked")
VLAN_MIN, VLAN_MAX = 1, 4094
# Fence settings appear in a stage's record only when given, so stages without them read as before.
FENCE_KEYS = ("dvswitch", "vlan_range", "fence_gateway_template", "external_network", "fence", "copy_mode")


@dataclass(frozen=True)
class Stage:
    name: str
    resource_pool: str
    restricted: bool = False
    ip_pools: tuple[dict[str, Any], ...] = ()
    # Fenced networks: port groups on `dvswitch` with VLANs from `vlan_range` ({"first","last"}),
    # a gateway cloned from `fence_gateway_template` with one NIC on `external_network`.
    dvswitch: str | None = None
    vlan_range: dict[str, int] | None = None
    fence_gateway_template: str | None = None
    external_network: str | None = None
    fence: str = "optional"  # "always": every deployment into the stage is fenced
    copy_mode: str = "full"  # copies of live deployments: full clones, or linked from a snapshot
    extra_pools: tuple[str, ...] = ()  # more pools (other clusters) placement may choose (domain/placement.py)

    @classmethod
    def parse(cls, data: object, field_name: str = "stage") -> Stage:
        """`field_name` prefixes the fields named in refusals ("" when they are the body's own)."""
        if not isinstance(data, dict):
            raise ValidationError(f"{field_name or 'body'} must be an object", field=field_name or None)
        at = f"{field_name}." if field_name else ""
        name = check_display_name(data.get("name"), f"{at}name")
        pool = PoolPath.parse(data.get("resource_pool"), f"{at}resource_pool").path
        restricted = data.get("restricted", False)
        if not isinstance(restricted, bool):
            raise ValidationError(f"{at}restricted must be true or false", field=f"{at}restricted")
        ip_pools = parse_ip_pools(data.get("ip_pools", []), f"{at}ip_pools")
        extra = parse_extra_pools(data.get("extra_pools", []), pool, f"{at}extra_pools")
        return cls(
            name=name, resource_pool=pool, restricted=restricted, ip_pools=ip_pools, extra_pools=extra,
            **parse_fencing(data, at),
        )  # fmt: skip

    @property
    def fencing(self) -> bool:
        """Whether deployments into this stage can be fenced."""
        return self.dvswitch is not None

    def to_dict(self) -> dict[str, Any]:
        stage: dict[str, Any] = {
            "name": self.name,
            "resource_pool": self.resource_pool,
            "restricted": self.restricted,
            "ip_pools": list(self.ip_pools),
        }
        if self.fencing:
            stage.update(
                dvswitch=self.dvswitch, vlan_range=self.vlan_range, fence_gateway_template=self.fence_gateway_template,
                external_network=self.external_network, fence=self.fence,
            )  # fmt: skip
        if self.copy_mode != "full":
            stage["copy_mode"] = self.copy_mode
        if self.extra_pools:
            stage["extra_pools"] = list(self.extra_pools)
        return stage


def _or(data: Mapping[str, Any], key: str, default: str) -> object:
    """The value given, or the default when absent or null (a patch clears a setting with null)."""
    value = data.get(key)
    return default if value is None else value


def parse_fencing(data: Mapping[str, Any], at: str = "") -> dict[str, Any]:
    """A stage's fence settings: all of dvswitch, vlan_range, fence_gateway_template and
    external_network, or none of them (then `fence` may only be "optional")."""
    fence = check_choice(_or(data, "fence", "optional"), f"{at}fence", FENCE_MODES)
    copy_mode = check_choice(_or(data, "copy_mode", "full"), f"{at}copy_mode", COPY_MODES)
    given = [k for k in ("dvswitch", "vlan_range", "fence_gateway_template", "external_network") if data.get(k)]
    if not given:
        if fence == "always":
            raise ValidationError(f"{at}fence 'always' needs {at}dvswitch and {at}vlan_range", field=f"{at}fence")
        return {"fence": fence, "copy_mode": copy_mode}
    for key in ("dvswitch", "vlan_range", "fence_gateway_template", "external_network"):
        if key not in given:
            raise ValidationError(f"{at}{key} is needed with {at}{given[0]} (fenced networks)", field=f"{at}{key}")
    switch = check_text(data["dvswitch"], f"{at}dvswitch", max_length=MAX_TEMPLATE_NAME, required=True)
    template = check_text(
        data["fence_gateway_template"], f"{at}fence_gateway_template", max_length=MAX_TEMPLATE_NAME, required=True
    )
    external = check_text(
        data["external_network"], f"{at}external_network", max_length=MAX_TEMPLATE_NAME, required=True
    )
    raw = data["vlan_range"]
    where = f"{at}vlan_range"
    if not isinstance(raw, dict) or set(raw) != {"first", "last"}:
        raise ValidationError(f"{where} must be an object with first and last", field=where)
    first = check_int(raw["first"], f"{where}.first", VLAN_MIN, VLAN_MAX)
    last = check_int(raw["last"], f"{where}.last", VLAN_MIN, VLAN_MAX)
    if last < first:
        raise ValidationError(f"{where}.last must not be below {where}.first", field=f"{where}.last")
    return {
        "dvswitch": switch, "vlan_range": {"first": first, "last": last}, "fence_gateway_template": template,
        "external_network": external, "fence": fence, "copy_mode": copy_mode,
    }  # fmt: skip


def parse_ip_pools(value: object, field: str) -> tuple[dict[str, Any], ...]:
    """A stage's IP pools; their networks must not overlap."""
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list", field=field)
    if len(value) > MAX_POOLS:
        raise ValidationError(f"{field} may hold at most {MAX_POOLS} pools", field=field)
    pools = tuple(parse_ip_pool(p, f"{field}[{i}]") for i, p in enumerate(value))
    networks = [ipaddress.IPv4Network(p["cidr"]) for p in pools]
    for i, a in enumerate(networks):
        for b in networks[:i]:
            if a.overlaps(b):
                raise ValidationError(f"{field}[{i}].cidr {a} overlaps {b}", field=f"{field}[{i}].cidr")
    return pools


@dataclass(frozen=True)
class Customization:
    os: OsFamily
    hostname: str
    ip_mode: IpMode

    @classmethod
    def parse(cls, data: object, machine_name: str, field_name: str) -> Customization:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValidationError(f"{field_name} must be an object", field=field_name)
        os_family = check_choice(data.get("os", "linux"), f"{field_name}.os", OS_FAMILIES)
        hostname = check_machine_name(data.get("hostname", machine_name), f"{field_name}.hostname")
        if os_family == "windows" and len(hostname) > WINDOWS_HOSTNAME_MAX:
            raise ValidationError(
                f"{field_name}.hostname must be at most {WINDOWS_HOSTNAME_MAX} characters for windows "
                "(NetBIOS computer name)",
                field=f"{field_name}.hostname",
            )
        ip_mode = check_choice(data.get("ip_mode", "static-pool"), f"{field_name}.ip_mode", IP_MODES)
        return cls(os=cast(OsFamily, os_family), hostname=hostname, ip_mode=cast(IpMode, ip_mode))

    def to_dict(self) -> dict[str, Any]:
        return {"os": self.os, "hostname": self.hostname, "ip_mode": self.ip_mode}


@dataclass(frozen=True)
class Machine:
    """One machine of a configuration: how to clone it, size it, wire it and customise it."""

    name: str
    template: str
    cpus: int
    memory_mib: int
    clone_mode: CloneMode
    customization: Customization
    disks_gib: tuple[int, ...] = ()
    nics: tuple[str, ...] = field(default=())
    start_order: StartOrder | None = None  # None: group 0, waits for nothing (domain/startorder.py)
    placement: dict[str, str] | None = None  # {"tier", "affinity_group"}: rules for domain/placement.py
    iso: str | None = None  # a media library medium's name, attached as a CD-ROM (domain/media.py)

    @classmethod
    def parse(
        cls, data: object, field_name: str = "machine", template_info: Mapping[str, Any] | None = None
    ) -> Machine:
        """`template_info` (the catalogue's record of the template) sizes a machine that gives no
        cpus / memory_mib; without it, or when it has no usable size, DEFAULT_CPUS / DEFAULT_MEMORY_MIB."""
        if not isinstance(data, dict):
            raise ValidationError(f"{field_name} must be an object", field=field_name)
        name = check_machine_name(data.get("name"), f"{field_name}.name")
        template = data.get("template")
        if not isinstance(template, str) or not template.strip():
            raise ValidationError(
                f"{field_name}.template must name a catalogue template",
                field=f"{field_name}.template",
            )
        check_text(template, f"{field_name}.template", max_length=MAX_TEMPLATE_NAME)
        cpus = check_int(
            _given(data, "cpus", template_info, DEFAULT_CPUS, MAX_CPUS, 1), f"{field_name}.cpus", 1, MAX_CPUS
        )
        memory = check_int(
            _given(data, "memory_mib", template_info, DEFAULT_MEMORY_MIB, MAX_MEMORY_MIB, 4),
            f"{field_name}.memory_mib",
            4,
            MAX_MEMORY_MIB,
        )
        if memory % 4:
            raise ValidationError(f"{field_name}.memory_mib must be a multiple of 4", field=f"{field_name}.memory_mib")
        clone_mode = check_choice(data.get("clone_mode", "full"), f"{field_name}.clone_mode", CLONE_MODES)
        disks_raw = data.get("disks", [])
        if not isinstance(disks_raw, list):
            raise ValidationError(f"{field_name}.disks must be a list", field=f"{field_name}.disks")
        disks: list[int] = []
        for i, disk in enumerate(disks_raw):
            where = f"{field_name}.disks[{i}]"
            if not isinstance(disk, dict):
                raise ValidationError(f"{where} must be an object with size_gib", field=where)
            disks.append(check_int(disk.get("size_gib"), f"{where}.size_gib", 1, MAX_DISK_GIB))
        nics_raw = data.get("nics", [])
        if not isinstance(nics_raw, list):
            raise ValidationError(f"{field_name}.nics must be a list", field=f"{field_name}.nics")
        nics: list[str] = []
        for i, nic in enumerate(nics_raw):
            where = f"{field_name}.nics[{i}]"
            if not isinstance(nic, dict) or not isinstance(nic.get("network"), str):
                raise ValidationError(f"{where} must be an object naming a network", field=f"{where}.network")
            nics.append(check_text(nic["network"], f"{where}.network", max_length=4 * MAX_NAME, required=True))
        customization = Customization.parse(data.get("customization"), name, f"{field_name}.customization")
        raw_order = data.get("start_order")
        start_order = None if raw_order is None else StartOrder.parse(raw_order, f"{field_name}.start_order")
        return cls(
            name=name,
            template=template.strip(),
            cpus=cpus,
            memory_mib=memory,
            clone_mode=cast(CloneMode, clone_mode),
            customization=customization,
            disks_gib=tuple(disks),
            nics=tuple(nics),
            start_order=start_order,
            placement=parse_machine_placement(data.get("placement"), f"{field_name}.placement"),
            iso=None if data.get("iso") is None else check_medium_name(data["iso"], f"{field_name}.iso"),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Machine:
        return cls.parse(data)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "template": self.template,
            "cpus": self.cpus,
            "memory_mib": self.memory_mib,
            "clone_mode": self.clone_mode,
            "disks": [{"size_gib": size} for size in self.disks_gib],
            "nics": [{"network": net} for net in self.nics],
            "customization": self.customization.to_dict(),
        }
        # Only when given: machines stored before start orders existed read back unchanged.
        if self.start_order is not None:
            data["start_order"] = self.start_order.to_dict()
        if self.placement is not None:
            data["placement"] = dict(self.placement)
        if self.iso is not None:
            data["iso"] = self.iso
        return data


@dataclass(frozen=True)
class Network:
    name: str
    description: str = ""

    @classmethod
    def parse(cls, data: object, field_name: str = "network") -> Network:
        if not isinstance(data, dict):
            raise ValidationError(f"{field_name} must be an object", field=field_name)
        name = check_display_name(data.get("name"), f"{field_name}.name")
        description = check_text(
            data.get("description", ""), f"{field_name}.description", max_length=1024, multiline=True
        )
        return cls(name=name, description=description)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description}


def check_description(value: object, field_name: str = "description") -> str:
    """Free text (several lines allowed) up to 4096 characters; None is empty."""
    return "" if value is None else check_text(value, field_name, max_length=4096, multiline=True)


def _given(
    data: Mapping[str, Any], key: str, template: Mapping[str, Any] | None, default: int, high: int, multiple: int
) -> object:
    """The size the user gave, else the template's (when usable here), else the default."""
    if data.get(key) is not None:
        return data[key]
    size = template.get(key) if template is not None else None
    if isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= high and size % multiple == 0:
        return size
    return default
