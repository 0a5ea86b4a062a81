"""Value objects and the validation rules they enforce.

Values travel inside events as plain dicts (JSON-friendly, stable on disk); the dataclasses
here are how the domain reads and checks them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from domain.addressing import parse_ip_pool
from domain.errors import ValidationError

CloneMode = Literal["full", "linked"]
OsFamily = Literal["linux", "windows"]
IpMode = Literal["static-pool", "dhcp"]

CLONE_MODES: tuple[str, ...] = ("full", "linked")
OS_FAMILIES: tuple[str, ...] = ("linux", "windows")
IP_MODES: tuple[str, ...] = ("static-pool", "dhcp")

_DISPLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")
_MACHINE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)

MAX_CPUS = 768
MAX_MEMORY_MIB = 24 * 1024 * 1024
MAX_DISK_GIB = 62 * 1024
WINDOWS_HOSTNAME_MAX = 15


def check_display_name(value: object, field_name: str) -> str:
    """A service, stage, configuration or network name: 1-63 chars, starts alphanumeric."""
    if not isinstance(value, str) or not _DISPLAY_NAME.match(value):
        raise ValidationError(
            f"{field_name} must be 1-63 characters of letters, digits, space, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field_name,
        )
    return value


def check_machine_name(value: object, field_name: str) -> str:
    """A machine name doubles as the default hostname, so it follows RFC 1123 label rules."""
    if not isinstance(value, str) or not _MACHINE_NAME.match(value):
        raise ValidationError(
            f"{field_name} must be a DNS label: 1-63 letters, digits or '-', not starting or ending with '-'",
            field=field_name,
        )
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
    """Names are unique case-insensitively; this is the comparison key."""
    return name.casefold()


@dataclass(frozen=True)
class PoolPath:
    """A vCenter resource pool inventory path: /<datacenter>/host/<cluster>/Resources[/<pool>...]."""

    datacenter: str
    cluster: str
    pools: tuple[str, ...]

    @classmethod
    def parse(cls, value: object, field_name: str = "resource_pool") -> PoolPath:
        if not isinstance(value, str) or not value.startswith("/"):
            raise ValidationError(
                f"{field_name} must be an inventory path such as /DC0/host/DC0_C0/Resources/payroll-test",
                field=field_name,
            )
        parts = value.strip("/").split("/")
        if (
            len(parts) < 4
            or parts[1] != "host"
            or parts[3] != "Resources"
            or any(not p.strip() for p in parts)
            or len(value) > 1024
        ):
            raise ValidationError(
                f"{field_name} must look like /<datacenter>/host/<cluster>/Resources[/<pool>...]",
                field=field_name,
            )
        return cls(datacenter=parts[0], cluster=parts[2], pools=tuple(parts[4:]))

    @property
    def path(self) -> str:
        return "/".join(["", self.datacenter, "host", self.cluster, "Resources", *self.pools])

    @property
    def cluster_path(self) -> str:
        return f"/{self.datacenter}/host/{self.cluster}"

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class Stage:
    name: str
    resource_pool: str
    restricted: bool = False
    ip_pools: tuple[dict[str, Any], ...] = ()

    @classmethod
    def parse(cls, data: object, field_name: str = "stage") -> Stage:
        if not isinstance(data, dict):
            raise ValidationError(f"{field_name} must be an object", field=field_name)
        name = check_display_name(data.get("name"), f"{field_name}.name")
        pool = PoolPath.parse(data.get("resource_pool"), f"{field_name}.resource_pool").path
        restricted = data.get("restricted", False)
        if not isinstance(restricted, bool):
            raise ValidationError(f"{field_name}.restricted must be true or false", field=f"{field_name}.restricted")
        ip_pools = parse_ip_pools(data.get("ip_pools", []), f"{field_name}.ip_pools")
        return cls(name=name, resource_pool=pool, restricted=restricted, ip_pools=ip_pools)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "resource_pool": self.resource_pool,
            "restricted": self.restricted,
            "ip_pools": list(self.ip_pools),
        }


def parse_ip_pools(value: object, field: str) -> tuple[dict[str, Any], ...]:
    """A stage's IP pools; their networks must not overlap."""
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list", field=field)
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

    @classmethod
    def parse(cls, data: object, field_name: str = "machine") -> Machine:
        if not isinstance(data, dict):
            raise ValidationError(f"{field_name} must be an object", field=field_name)
        name = check_machine_name(data.get("name"), f"{field_name}.name")
        template = data.get("template")
        if not isinstance(template, str) or not template.strip():
            raise ValidationError(
                f"{field_name}.template must name a catalogue template",
                field=f"{field_name}.template",
            )
        cpus = check_int(data.get("cpus", 1), f"{field_name}.cpus", 1, MAX_CPUS)
        memory = check_int(data.get("memory_mib", 1024), f"{field_name}.memory_mib", 4, MAX_MEMORY_MIB)
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
            nics.append(nic["network"])
        customization = Customization.parse(data.get("customization"), name, f"{field_name}.customization")
        return cls(
            name=name,
            template=template.strip(),
            cpus=cpus,
            memory_mib=memory,
            clone_mode=cast(CloneMode, clone_mode),
            customization=customization,
            disks_gib=tuple(disks),
            nics=tuple(nics),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Machine:
        return cls.parse(data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "template": self.template,
            "cpus": self.cpus,
            "memory_mib": self.memory_mib,
            "clone_mode": self.clone_mode,
            "disks": [{"size_gib": size} for size in self.disks_gib],
            "nics": [{"network": net} for net in self.nics],
            "customization": self.customization.to_dict(),
        }


@dataclass(frozen=True)
class Network:
    name: str
    description: str = ""

    @classmethod
    def parse(cls, data: object, field_name: str = "network") -> Network:
        if not isinstance(data, dict):
            raise ValidationError(f"{field_name} must be an object", field=field_name)
        name = check_display_name(data.get("name"), f"{field_name}.name")
        description = data.get("description", "")
        if not isinstance(description, str) or len(description) > 1024:
            raise ValidationError(
                f"{field_name}.description must be text up to 1024 characters",
                field=f"{field_name}.description",
            )
        return cls(name=name, description=description)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description}


def check_description(value: object, field_name: str = "description") -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 4096:
        raise ValidationError(f"{field_name} must be text up to 4096 characters", field=field_name)
    return value
