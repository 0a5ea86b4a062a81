"""Address plans: stage IP pools and VMware MACs (pure computation; claims make them unique)."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator
from typing import Any

from domain.errors import ValidationError
from domain.text import check_text

# VMware's range for manually assigned MACs: 00:50:56:00:00:00 - 00:50:56:3F:FF:FF.
MAC_PREFIX = "00:50:56"
MAC_SPACE = 0x400000


# A pool hands out at most a /16's worth of addresses: larger networks must bound the range with
# first/last. Every computation below is arithmetic on integers, so even 0.0.0.0/0 costs nothing.
MAX_POOL_ADDRESSES = 1 << 16
MAX_POOLS = 32
MAX_DNS = 8


def parse_ip_pool(data: object, field: str) -> dict[str, Any]:
    """{"cidr", "gateway", "dns": [...], "first", "last"}; first/last default to the usable hosts."""
    if not isinstance(data, dict):
        raise ValidationError(f"{field} must be an object", field=field)
    try:
        network = ipaddress.IPv4Network(_text(data.get("cidr"), f"{field}.cidr"), strict=True)
    except ValueError:
        raise ValidationError(
            f"{field}.cidr must be an IPv4 network such as 10.20.0.0/24", field=f"{field}.cidr"
        ) from None
    if network.prefixlen > 30:
        raise ValidationError(f"{field}.cidr must hold at least two hosts (/30 or larger)", field=f"{field}.cidr")
    # Usable hosts: everything but the network and broadcast addresses (prefix <= 30 here).
    low, high = int(network.network_address) + 1, int(network.broadcast_address) - 1

    def address(key: str, default: int | None) -> int:
        raw = data.get(key)
        if raw is None and default is not None:
            return default
        value = int(_address(raw, f"{field}.{key}"))
        if not low <= value <= high:
            where = "outside" if value not in (low - 1, high + 1) else "the network or broadcast address of"
            raise ValidationError(
                f"{field}.{key} {ipaddress.IPv4Address(value)} is {where} {network} (usable: "
                f"{ipaddress.IPv4Address(low)} - {ipaddress.IPv4Address(high)})",
                field=f"{field}.{key}",
            )
        return value

    gateway = address("gateway", None)
    first = address("first", low)
    last = address("last", high)
    if first > last:
        raise ValidationError(f"{field}.first must not be after {field}.last", field=f"{field}.first")
    if last - first + 1 > MAX_POOL_ADDRESSES:
        raise ValidationError(
            f"{field}: {network} holds more than {MAX_POOL_ADDRESSES} addresses; give first and last "
            f"to bound the range to at most {MAX_POOL_ADDRESSES} (a /16)",
            field=f"{field}.cidr" if data.get("first") is None and data.get("last") is None else f"{field}.last",
        )
    dns_raw = data.get("dns", [])
    if not isinstance(dns_raw, list) or len(dns_raw) > MAX_DNS:
        raise ValidationError(f"{field}.dns must be a list of at most {MAX_DNS} IPv4 addresses", field=f"{field}.dns")
    dns = [str(_address(server, f"{field}.dns[{i}]")) for i, server in enumerate(dns_raw)]
    return {
        "cidr": str(network),
        "gateway": str(ipaddress.IPv4Address(gateway)),
        "dns": dns,
        "first": str(ipaddress.IPv4Address(first)),
        "last": str(ipaddress.IPv4Address(last)),
    }


def _text(value: object, field: str) -> str:
    # Bounded before parsing: an address is short, and its refusal message echoes it.
    return check_text(value, field, max_length=64) if isinstance(value, str) else str(value)


def _address(raw: object, field: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(_text(raw, field))
    except ValueError:
        raise ValidationError(f"{field} must be an IPv4 address", field=field) from None


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
