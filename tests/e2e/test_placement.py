"""One resource pool per service and no overlapping IP ranges between services, refused naming
the owner (claims and the address plan live in the event store)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_service
from tests.support import ROOT_POOL


def ip_pool(cidr: str, gateway: str, **extra: str) -> dict[str, Any]:
    return {"cidr": cidr, "gateway": gateway, **extra}


def test_a_resource_pool_serves_one_service_until_its_stage_lets_it_go(client: TestClient) -> None:
    payroll = setup_service(client)  # stages int, test, prod on {ROOT_POOL}/<stage>-pool
    taken = f"{ROOT_POOL}/int-pool"
    hr_body = {"name": "hr", "stages": [{"name": "dev", "resource_pool": taken}]}
    refused = client.post("/api/v1/services", json=hr_body, auth=AUTH)
    assert refused.status_code == 409
    assert "stage 'int' of service 'payroll'" in refused.json()["error"]["message"]
    assert refused.json()["error"]["field"] == "stages"

    hr = client.post(
        "/api/v1/services",
        json={"name": "hr", "stages": [{"name": "dev", "resource_pool": f"{ROOT_POOL}/hr"}]},
        auth=AUTH,
    ).json()
    added = client.post(
        f"/api/v1/services/{hr['id']}/stages", json={"name": "qa", "resource_pool": f"{ROOT_POOL}/test-pool"}, auth=AUTH
    )
    assert added.status_code == 409
    assert "stage 'test' of service 'payroll'" in added.json()["error"]["message"]
    mapped = client.patch(f"/api/v1/services/{hr['id']}/stages/dev", json={"resource_pool": taken}, auth=AUTH)
    assert (mapped.status_code, mapped.json()["error"]["field"]) == (409, "resource_pool")
    assert (
        client.get(f"/api/v1/services/{hr['id']}", auth=AUTH).json()["stages"][0]["resource_pool"] == f"{ROOT_POOL}/hr"
    )

    # payroll remaps int and removes test: both pools are free for hr.
    moved = client.patch(
        f"/api/v1/services/{payroll['id']}/stages/int", json={"resource_pool": f"{ROOT_POOL}/int-2"}, auth=AUTH
    )
    assert moved.status_code == 200, moved.text
    assert client.delete(f"/api/v1/services/{payroll['id']}/stages/test", auth=AUTH).status_code == 200
    assert (
        client.patch(f"/api/v1/services/{hr['id']}/stages/dev", json={"resource_pool": taken}, auth=AUTH).status_code
        == 200
    )
    again = client.post(
        f"/api/v1/services/{hr['id']}/stages", json={"name": "qa", "resource_pool": f"{ROOT_POOL}/test-pool"}, auth=AUTH
    )
    assert again.status_code == 201, again.text


def test_ip_pools_of_two_services_never_overlap(client: TestClient) -> None:
    payroll = setup_service(client)
    hr = client.post(
        "/api/v1/services",
        json={"name": "hr", "stages": [{"name": "dev", "resource_pool": f"{ROOT_POOL}/hr"}]},
        auth=AUTH,
    ).json()
    payroll_int = f"/api/v1/services/{payroll['id']}/stages/int"
    hr_dev = f"/api/v1/services/{hr['id']}/stages/dev"
    assert (
        client.patch(payroll_int, json={"ip_pools": [ip_pool("10.20.0.0/24", "10.20.0.1")]}, auth=AUTH).status_code
        == 200
    )
    # Another stage of the same service may not hand out the same addresses either.
    same_service = client.patch(
        f"/api/v1/services/{payroll['id']}/stages/test",
        json={"ip_pools": [ip_pool("10.20.0.0/29", "10.20.0.1")]},
        auth=AUTH,
    )
    assert same_service.status_code == 409, same_service.text
    assert same_service.json()["error"] == {
        "code": "conflict",
        "message": "ip_pools: 10.20.0.1-10.20.0.6 of stage 'test' overlaps the IP pool of stage 'int' of service "
        "'payroll' (10.20.0.1-10.20.0.254)",
        "field": "ip_pools",
        "position": same_service.json()["error"]["position"],
    }

    overlapping = client.patch(hr_dev, json={"ip_pools": [ip_pool("10.20.0.128/25", "10.20.0.129")]}, auth=AUTH)
    assert overlapping.status_code == 409
    error = overlapping.json()["error"]
    assert error["field"] == "ip_pools"
    assert "of service 'payroll'" in error["message"]
    assert client.get(f"/api/v1/services/{hr['id']}", auth=AUTH).json()["stages"][0]["ip_pools"] == []

    # The same network, but disjoint ranges handed out, is fine; so is another network.
    split = [ip_pool("10.30.0.0/24", "10.30.0.1", first="10.30.0.10", last="10.30.0.99")]
    assert client.patch(payroll_int, json={"ip_pools": split}, auth=AUTH).status_code == 200
    assert (
        client.patch(f"/api/v1/services/{payroll['id']}/stages/test", json={"ip_pools": []}, auth=AUTH).status_code
        == 200
    )
    other_half = [ip_pool("10.30.0.0/24", "10.30.0.1", first="10.30.0.100", last="10.30.0.200")]
    assert client.patch(hr_dev, json={"ip_pools": other_half}, auth=AUTH).status_code == 200
    assert client.patch(hr_dev, json={"ip_pools": [ip_pool("10.20.0.0/24", "10.20.0.1")]}, auth=AUTH).status_code == 200
    # Renamed, the owner is named by its new name.
    client.patch(f"/api/v1/services/{hr['id']}", json={"name": "people"}, auth=AUTH)
    clash = client.patch(payroll_int, json={"ip_pools": [ip_pool("10.20.0.0/24", "10.20.0.1")]}, auth=AUTH)
    assert clash.status_code == 409
    assert "of service 'people'" in clash.json()["error"]["message"]
