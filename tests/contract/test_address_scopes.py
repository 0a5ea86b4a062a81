"""One IPv4 address goes to one live machine, whatever pool, stage or service hands it out."""

from __future__ import annotations

from uuid import UUID, uuid4, uuid5

import pytest

from adapters.runtime import Runtime
from domain.commands.addresses import IP_CLAIMS
from domain.errors import ConflictError
from domain.names import NameClaim
from tests.support import machine, stages


def pool(cidr: str, only: str) -> dict[str, object]:
    return {"cidr": cidr, "gateway": cidr.replace("0/", "1/").split("/")[0], "first": only, "last": only}


def configuration(runtime: Runtime, service_id: UUID) -> UUID:
    return runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], [machine("a1")], actor="a"
    ).value.id


def deploy(runtime: Runtime, configuration_id: UUID, stage: str = "test") -> tuple[str, object]:
    deployment_id = runtime.app.deploy(configuration_id, stage, actor="a").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    return deployment.state, (deployment.machines[0].get("addressing") or {}).get("ip")


def test_two_stages_of_one_service_may_not_hand_out_the_same_addresses(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("s", "", stages("test", "prod"), actor="a").value.id
    runtime.app.update_stage(service_id, "test", {"ip_pools": [pool("10.20.0.0/24", "10.20.0.5")]}, actor="a")
    with pytest.raises(ConflictError) as refused:
        runtime.app.update_stage(service_id, "prod", {"ip_pools": [pool("10.20.0.0/29", "10.20.0.5")]}, actor="a")
    assert str(refused.value) == (
        "ip_pools: 10.20.0.5-10.20.0.5 of stage 'prod' overlaps the IP pool of stage 'test' of service 's' "
        "(10.20.0.5-10.20.0.5)"
    )
    # Ranges that only share the network, not addresses, are fine.
    runtime.app.update_stage(service_id, "prod", {"ip_pools": [pool("10.20.0.0/29", "10.20.0.6")]}, actor="a")


def test_widening_a_live_pool_never_gives_its_address_twice(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("s", "", stages("test"), actor="a").value.id
    runtime.app.update_stage(service_id, "test", {"ip_pools": [pool("10.20.0.0/24", "10.20.0.5")]}, actor="a")
    configuration_id = configuration(runtime, service_id)
    assert deploy(runtime, configuration_id) == ("deployed", "10.20.0.5")
    runtime.app.update_stage(service_id, "test", {"ip_pools": [pool("10.20.0.0/23", "10.20.0.5")]}, actor="a")
    assert deploy(runtime, configuration_id) == ("failed", None)


def test_claims_written_before_addresses_were_scoped_alone_still_hold_and_are_released(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("s", "", stages("test"), actor="a").value.id
    runtime.app.update_stage(service_id, "test", {"ip_pools": [pool("10.20.0.0/24", "10.20.0.5")]}, actor="a")
    configuration_id = configuration(runtime, service_id)
    # An older store: a live machine holds 10.20.0.5 under its pool's CIDR.
    runtime.app.commit(NameClaim(kind=IP_CLAIMS, scope="10.20.0.0/24", name="10.20.0.5", owner_id=uuid4()))
    assert deploy(runtime, configuration_id) == ("failed", None)
    runtime.app.update_stage(service_id, "test", {"ip_pools": [pool("10.20.0.0/23", "10.20.0.5")]}, actor="a")
    assert deploy(runtime, configuration_id) == ("failed", None)

    # A machine of that older store, holding its address under the old scope, releases it on undeploy.
    runtime.app.update_stage(service_id, "test", {"ip_pools": [pool("10.20.0.0/24", "10.20.0.6")]}, actor="a")
    deployment_id = runtime.app.deploy(configuration_id, "test", actor="a").value.id
    owner = uuid5(deployment_id, "a1")
    # What assign_addresses wrote then: the machine's addressing and its claims, in one write.
    older = runtime.app.deployment(deployment_id)
    mac = "00:50:56:00:00:99"
    addressing = {"ip": "10.20.0.6", "cidr": "10.20.0.0/24", "prefix_length": 24, "gateway": "10.20.0.1", "dns": []}
    older.record_addresses("a1", {**addressing, "macs": [{"network": "front", "mac": mac}]}, "worker")
    runtime.app.commit(
        older,
        NameClaim(kind=IP_CLAIMS, scope="10.20.0.0/24", name="10.20.0.6", owner_id=owner),
        NameClaim(kind="mac", scope="front", name=mac, owner_id=owner),
    )
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).machines[0]["addressing"]["ip"] == "10.20.0.6"
    assert deploy(runtime, configuration_id) == ("failed", None)
    runtime.app.undeploy(deployment_id, actor="a")
    runtime.catch_up()
    assert deploy(runtime, configuration_id) == ("deployed", "10.20.0.6")
