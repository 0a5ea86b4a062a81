"""Shared set-up for fenced-network tests: a service whose stages can fence, a 3-tier configuration."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.runtime import Runtime
from tests.support import ROOT_POOL, machine

SWITCH = "DVS0"


def fenced_stage(name: str, first_vlan: int, cidr: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "resource_pool": f"{ROOT_POOL}/fence-{name}-pool",
        "ip_pools": [{"cidr": cidr, "gateway": cidr.replace("0/24", "1"), "dns": []}],
        "dvswitch": SWITCH,
        "vlan_range": {"first": first_vlan, "last": first_vlan + 99},
        "fence_gateway_template": "tpl-ubuntu-2404",
        "external_network": "VM Network",
        **extra,
    }


THREE_TIER = [
    machine("web", nics=[{"network": "front"}]),
    machine("app", nics=[{"network": "front"}, {"network": "back"}]),
    machine("db", nics=[{"network": "back"}]),
]


def three_tier(runtime: Runtime, **test_stage: Any) -> UUID:
    """A service (stages test, prod) and a 3-tier configuration; returns the configuration id."""
    service = runtime.app.register_service(
        "shop",
        "",
        [fenced_stage("test", 100, "10.61.0.0/24", **test_stage), fenced_stage("prod", 300, "10.62.0.0/24")],
        actor="admin",
    ).value
    networks = [{"name": "front"}, {"name": "back"}]
    return runtime.app.create_configuration(service.id, "shop", "", networks, THREE_TIER, actor="admin").value.id
