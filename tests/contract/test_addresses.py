"""Stage IP pools and MACs: unique among live machines, returned on undeploy."""

from __future__ import annotations

import ipaddress
from uuid import UUID, uuid4

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.addressing import candidate_ips
from domain.commands.addresses import IP_CLAIMS
from domain.errors import ValidationError
from domain.names import NameClaim
from tests.support import machine, stages

POOL = {"cidr": "10.50.0.0/29", "gateway": "10.50.0.1", "dns": ["10.50.0.2"], "first": "10.50.0.1", "last": "10.50.0.6"}


@pytest.fixture
def configuration_id(runtime: Runtime) -> UUID:
    service_id = runtime.app.register_service("s", "", stages("int", "test"), actor="a").value.id
    runtime.app.update_stage(service_id, "int", {"ip_pools": [POOL]}, actor="a")
    machines = [machine("a1"), machine("a2", nics=[{"network": "front"}, {"network": "front"}])]
    return runtime.app.create_configuration(service_id, "c", "", [{"name": "front"}], machines, actor="a").value.id


def addresses(runtime: Runtime, deployment_id: UUID) -> list[dict[str, object]]:
    return [m["addressing"] for m in runtime.app.deployment(deployment_id).machines]


def test_static_addresses_come_from_the_pool_and_are_never_shared(
    runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID
) -> None:
    first = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    second = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    ips = [a["ip"] for d in (first, second) for a in addresses(runtime, d)]
    assert len(set(ips)) == 4
    for ip in ips:
        assert ipaddress.IPv4Address(str(ip)) in ipaddress.IPv4Network(POOL["cidr"])
        assert ip != POOL["gateway"]
    vm_ips = {vm.ip for d in (first, second) for vm in vcenter.find_vms(d)}
    assert vm_ips == set(ips)
    macs = [n["mac"] for d in (first, second) for a in addresses(runtime, d) for n in a["macs"]]  # type: ignore[attr-defined]
    assert len(set(macs)) == 6
    assert all(str(m).startswith("00:50:56:") and int(str(m).split(":")[3], 16) <= 0x3F for m in macs)


def test_an_exhausted_pool_fails_the_deployment_and_undeploy_returns_addresses(
    runtime: Runtime, configuration_id: UUID
) -> None:
    # 5 usable addresses (10.50.0.2-6), 2 per deployment.
    deployments = [runtime.app.deploy(configuration_id, "int", actor="a").value.id for _ in range(3)]
    runtime.catch_up()
    states = [runtime.app.deployment(d).state for d in deployments]
    assert states == ["deployed", "deployed", "failed"]
    failed = runtime.app.deployment(deployments[2])
    # Not a vCenter fault: the deployment fails with the domain's own reason, as an event.
    assert failed.failure == "stage int's IP pool 10.50.0.0/29 has no free address"
    last = runtime.app.select_notifications(1, 10_000)[-1]
    assert last.topic == "stagekeeper:Deployment.ProvisioningFailed"
    assert last.originator_id == deployments[2]
    runtime.app.undeploy(deployments[0], actor="a")
    runtime.catch_up()
    runtime.app.retry_deployment(deployments[2], actor="a")
    runtime.catch_up()
    assert runtime.app.deployment(deployments[2]).state == "deployed"


def test_dhcp_machines_and_stages_without_pools_get_no_static_address(runtime: Runtime, configuration_id: UUID) -> None:
    deployment_id = runtime.app.deploy(configuration_id, "test", actor="a").value.id
    runtime.catch_up()
    assert [a["ip"] for a in addresses(runtime, deployment_id)] == [None, None]


def test_bad_pools_are_refused_naming_the_field(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("p", "", stages("int"), actor="a").value.id
    cases = [
        ({"cidr": "10.0.0.0/33", "gateway": "10.0.0.1"}, "ip_pools[0].cidr"),
        ({"cidr": "10.0.0.0/24", "gateway": "10.0.1.1"}, "ip_pools[0].gateway"),
        ({"cidr": "10.0.0.0/24", "gateway": "10.0.0.1", "first": "10.0.0.9", "last": "10.0.0.3"}, "ip_pools[0].first"),
        ({"cidr": "10.0.0.0/24", "gateway": "10.0.0.1", "dns": ["dns.example"]}, "ip_pools[0].dns[0]"),
    ]
    for pool, field in cases:
        with pytest.raises(ValidationError) as error:
            runtime.app.update_stage(service_id, "int", {"ip_pools": [pool]}, actor="a")
        assert error.value.field == field
    overlapping = [{"cidr": "10.0.0.0/24", "gateway": "10.0.0.1"}, {"cidr": "10.0.0.128/25", "gateway": "10.0.0.129"}]
    with pytest.raises(ValidationError) as error:
        runtime.app.update_stage(service_id, "int", {"ip_pools": overlapping}, actor="a")
    assert error.value.field == "ip_pools[1].cidr"


def test_free_addresses_of_a_whole_deployment_cost_one_read_and_taken_ones_are_still_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = runtime.app
    service_id = app.register_service("big", "", stages("int"), actor="a").value.id
    wide = {"cidr": "10.60.0.0/16", "gateway": "10.60.0.1"}  # first choices of 2 machines never meet
    app.update_stage(service_id, "int", {"ip_pools": [wide]}, actor="a")
    machines = [machine("a1"), machine("a2", nics=[{"network": "front"}, {"network": "front"}])]
    configuration_id = app.create_configuration(service_id, "c", "", [{"name": "front"}], machines, actor="a").value.id
    reads: list[int] = []
    singles: list[str] = []
    existing, claim_name = app.existing, app.claim_name

    def counted_existing(ids: list[UUID]) -> set[UUID]:
        reads.append(len(ids))
        return existing(ids)

    def counted_claim(kind: str, scope: str, name: str, owner_id: UUID) -> NameClaim:
        singles.append(name)
        return claim_name(kind, scope, name, owner_id)

    monkeypatch.setattr(app, "existing", counted_existing)
    monkeypatch.setattr(app, "claim_name", counted_claim)
    first = app.deploy(configuration_id, "int", actor="a").value.id
    app.assign_addresses(first, "worker")
    # 2 first IPs with their 31 older CIDR scopes each, and 3 first MACs: one read, nothing claimed alone.
    assert (reads, singles) == ([2 * 32 + 3], [])
    # Taken addresses are still refused: an older CIDR-scoped claim on the next deployment's first IP.
    second = app.deploy(configuration_id, "int", actor="a").value.id
    ip = next(iter(candidate_ips(app.service(service_id).stage("int")["ip_pools"][0], f"{second}/a1")))
    app.commit(NameClaim(kind=IP_CLAIMS, scope="10.60.0.0/16", name=ip, owner_id=uuid4()))
    app.assign_addresses(second, "worker")
    ips = [a["ip"] for d in (first, second) for a in addresses(runtime, d)]
    assert ip not in ips
    assert len(set(ips)) == 4
    macs = [n["mac"] for d in (first, second) for a in addresses(runtime, d) for n in a["macs"]]  # type: ignore[attr-defined]
    assert len(set(macs)) == 6
