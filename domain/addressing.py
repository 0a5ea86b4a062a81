"""Address plans: stage IP pools and VMware MACs (pure computation; claims make them unique)."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator
from typing import Any

from domain.errors import ValidationError

# VMware's range for manually assigned MACs: 00:50:56:00:00:00 - 00:50:56:3F:FF:FF.
MAC_PREFIX = "00:50:56"
MAC_SPACE = 0x400000


def parse_ip_pool(data: object, field: str) -> dict[str, Any]:
    """{"cidr", "gateway", "dns": [...], "first", "last"}; first/last default to the usable hosts."""
    if not isinstance(data, dict):
        raise ValidationError(f"{field} must be an object", field=field)
    try:
        network = ipaddress.IPv4Network(str(data.get("cidr")), strict=True)
    except ValueError:
        raise ValidationError(
            f"{field}.cidr must be an IPv4 network such as 10.20.0.0/24", field=f"{field}.cidr"
        ) from None
    if network.prefixlen > 30:
        raise ValidationError(f"{field}.cidr must hold at least two hosts (/30 or larger)", field=f"{field}.cidr")

    def address(key: str, default: ipaddress.IPv4Address | None) -> ipaddress.IPv4Address:
        raw = data.get(key)
        if raw is None and default is not None:
            return default
        try:
            value = ipaddress.IPv4Address(str(raw))
        except ValueError:
            raise ValidationError(f"{field}.{key} must be an IPv4 address", field=f"{field}.{key}") from None
        if value not in network:
            raise ValidationError(f"{field}.{key} {value} is outside {network}", field=f"{field}.{key}")
        return value

    hosts = list(network.hosts())
    gateway = address("gateway", None)
    first = address("first", hosts[0])
    last = address("last", hosts[-1])
    if first > last:
        raise ValidationError(f"{field}.first must not be after {field}.last", field=f"{field}.first")
    dns_raw = data.get("dns", [])
    if not isinstance(dns_raw, list):
        raise ValidationError(f"{field}.dns must be a list of IPv4 addresses", field=f"{field}.dns")
    dns = []
    for i, server in enumerate(dns_raw):
        try:
            dns.append(str(ipaddress.IPv4Address(str(server))))
        except ValueError:
            raise ValidationError(f"{field}.dns[{i}] must be an IPv4 address", field=f"{field}.dns[{i}]") from None
    return {"cidr": str(network), "gateway": str(gateway), "dns": dns, "first": str(first), "last": str(last)}


def candidate_ips(pool: dict[str, Any], seed: str) -> Iterator[str]:
    """Every address of the pool's range except the gateway, starting at a seed-derived offset
    (so concurrent deployments rarely try the same address first)."""
    first = int(ipaddress.IPv4Address(pool["first"]))
    last = int(ipaddress.IPv4Address(pool["last"]))
    size = last - first + 1
    start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % size
    for step in range(size):
        value = str(ipaddress.IPv4Address(first + (start + step) % size))
        if value != pool["gateway"]:
            yield value


def candidate_macs(seed: str, limit: int = 64) -> Iterator[str]:
    """MACs in VMware's manual range, derived from the seed, then its successors."""
    start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % MAC_SPACE
    for step in range(limit):
        value = (start + step) % MAC_SPACE
        yield f"{MAC_PREFIX}:{value >> 16:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"
