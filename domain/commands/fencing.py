"""Addresses of a fenced deployment, decided in one write with its claims.

Inside a fence, machines keep the configuration's own addresses: a copy keeps its source's IPs
and MACs; a deployment from templates gets addresses derived from the configuration id and the
machine name (the same in every fenced deployment of that configuration). These are not claimed:
the fence isolates them. What is claimed, uniquely, in the event store: one VLAN per fenced
network (scoped by the distributed switch), and the external addresses of the gateway and of each
machine it maps (from the stage's IP pools, like any pool address).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid5

from domain.addressing import candidate_ips, candidate_macs
from domain.deployment import Deployment
from domain.errors import AddressExhaustedError
from domain.names import NameClaim

VLAN_CLAIMS = "vlan"
GATEWAY_MACHINE = "_fence-gateway"  # the gateway VM's machine tag: "_" keeps it apart from machine names
MAX_PORTGROUP_NAME = 80

Claimer = Callable[[str, str, str, UUID], NameClaim | None]  # kind, scope, name, owner -> claim or None


def portgroup_name(deployment_id: UUID, network: str) -> str:
    """Deterministic, so a restarted worker finds the port group an interrupted one made."""
    return f"sk-{deployment_id.hex[:12]}-{network}"[:MAX_PORTGROUP_NAME]


def gateway_vm_name(deployment_id: UUID) -> str:
    return f"sk-{deployment_id.hex[:12]}--gw"  # "-gw" is no machine name (a label cannot start with "-")


def vlan_owner(deployment_id: UUID, network: str) -> UUID:
    return uuid5(deployment_id, f"fence-vlan:{network}")


def external_owner(deployment_id: UUID, machine: str) -> UUID:
    return uuid5(deployment_id, f"fence-nat:{machine}")


def internal_addressing(deployment: Deployment, stage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each machine's addresses inside the fence (identical in every copy)."""
    source = (deployment.copy_of or {}).get("machines", {})
    used_ips: set[str] = set()
    used_macs: set[str] = set()
    result: dict[str, dict[str, Any]] = {}
    pools = stage.get("ip_pools", [])
    for machine in deployment.machines:
        name, spec = machine["name"], machine["spec"]
        kept = (source.get(name) or {}).get("addressing")
        if kept is not None:
            result[name] = kept
            continue
        seed = f"{deployment.configuration_id}/{name}"
        addressing: dict[str, Any] = {"ip": None, "cidr": None, "prefix_length": None, "gateway": None, "dns": []}
        if spec["customization"]["ip_mode"] == "static-pool" and pools:
            pool = pools[0]
            ip = next(ip for ip in candidate_ips(pool, seed) if ip not in used_ips)
            used_ips.add(ip)
            addressing.update(
                ip=ip, cidr=pool["cidr"], prefix_length=int(pool["cidr"].split("/")[1]), gateway=pool["gateway"],
                dns=pool["dns"],
            )  # fmt: skip
        macs = []
        for index, nic in enumerate(spec["nics"]):
            mac = next(m for m in candidate_macs(f"{seed}/{index}", limit=4096) if m not in used_macs)
            used_macs.add(mac)
            macs.append({"network": nic["network"], "mac": mac})
        addressing["macs"] = macs
        result[name] = addressing
    return result


def claim_network(deployment: Deployment, network: str, claim: Claimer) -> tuple[dict[str, Any], NameClaim]:
    """A fenced network's port group and a free VLAN of the stage's range, with its claim."""
    assert deployment.fence is not None
    fence = deployment.fence
    first, last = fence["vlan_range"]["first"], fence["vlan_range"]["last"]
    size = last - first + 1
    # Start at a point derived from the network's port group, so copies deployed at once
    # do not all race for the first VLAN.
    start = int(hashlib.sha256(portgroup_name(deployment.id, network).encode()).hexdigest(), 16) % size
    owner = vlan_owner(deployment.id, network)
    for offset in range(size):
        vlan = first + (start + offset) % size
        found = claim(VLAN_CLAIMS, fence["dvswitch"], str(vlan), owner)
        if found is not None:
            entry = {"network": network, "portgroup": portgroup_name(deployment.id, network), "vlan": int(found.name)}
            return entry, found
    raise AddressExhaustedError(f"no free VLAN in {first}-{last} on switch '{fence['dvswitch']}'", field="vlan_range")


def claim_external(deployment_id: UUID, stage: dict[str, Any], machine: str, claim: Claimer) -> NameClaim | None:
    """A free external address of the stage's IP pools for `machine` (or the gateway), claimed;
    None when the stage has no pools (the gateway's outside NIC takes DHCP, nothing is mapped)."""
    pools = stage.get("ip_pools", [])
    owner = external_owner(deployment_id, machine)
    for pool in pools:
        for ip in candidate_ips(pool, f"{deployment_id}/{machine}/external"):
            held = claim("ip", "ipv4", ip, owner)
            if held is not None:
                return held
    if pools:
        raise AddressExhaustedError(f"stage {stage['name']}'s IP pools have no free external address")
    return None


def wanted_networks(networks: list[dict[str, Any]], machines: list[dict[str, Any]]) -> list[str]:
    """The configuration's networks and any its machines' NICs name, in order (one port group each)."""
    names = [n["name"] for n in networks]
    for machine in machines:
        names.extend(nic["network"] for nic in machine.get("nics", []) if nic["network"] not in names)
    return names


def plan(
    deployment: Deployment, stage: dict[str, Any], internal: dict[str, dict[str, Any]], claim: Claimer
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]], list[NameClaim]]:
    """(networks, gateway, nat, claims): a VLAN per network, the gateway's and machines' external IPs."""
    assert deployment.fence is not None
    fence = deployment.fence
    claims: list[NameClaim] = []
    networks = []
    for network in fence["requested_networks"]:
        entry, found = claim_network(deployment, network, claim)
        claims.append(found)
        networks.append(entry)
    pools = stage.get("ip_pools", [])

    def external(machine: str) -> str | None:
        held = claim_external(deployment.id, stage, machine, claim)
        if held is None:
            return None
        claims.append(held)
        return held.name

    gateway = {"vm_name": gateway_vm_name(deployment.id), "external_ip": external(GATEWAY_MACHINE)}
    nat = [
        {"machine": name, "internal_ip": addressing["ip"], "external_ip": external(name)}
        for name, addressing in internal.items()
        if addressing.get("ip") and pools
    ]
    return networks, gateway, nat, claims
