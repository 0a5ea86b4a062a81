"""Stage IP pools: integer arithmetic whatever the network's size, and no nonsense accepted."""

from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

import pytest

from domain.addressing import MAX_DNS, MAX_POOL_ADDRESSES, candidate_ips, parse_ip_pool
from domain.errors import ValidationError
from domain.values import parse_ip_pools


def test_a_24_defaults_to_its_usable_hosts() -> None:
    pool = parse_ip_pool({"cidr": "10.20.0.0/24", "gateway": "10.20.0.1"}, "ip_pools[0]")
    assert pool == {
        "cidr": "10.20.0.0/24",
        "gateway": "10.20.0.1",
        "dns": [],
        "first": "10.20.0.1",
        "last": "10.20.0.254",
    }


def test_a_wide_network_bounded_by_first_and_last_costs_no_memory() -> None:
    data = {"cidr": "10.0.0.0/8", "gateway": "10.0.0.1", "first": "10.7.0.0", "last": "10.7.255.255"}
    tracemalloc.start()
    try:
        pool = parse_ip_pool(data, "ip_pools[0]")
        first_ten = list(itertools.islice(candidate_ips(pool, "seed"), 10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000, f"parsing a /8 pool allocated {peak} bytes"
    assert (pool["first"], pool["last"]) == ("10.7.0.0", "10.7.255.255")
    assert len(set(first_ten)) == 10
    assert all(ip.startswith("10.7.") for ip in first_ten)


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.0/8", "172.16.0.0/15"])
def test_a_network_wider_than_a_16_must_be_bounded(cidr: str) -> None:
    gateway = cidr.split("/")[0][:-1] + "1"
    with pytest.raises(ValidationError) as error:
        parse_ip_pool({"cidr": cidr, "gateway": gateway}, "ip_pools[0]")
    assert error.value.field == "ip_pools[0].cidr"
    assert str(MAX_POOL_ADDRESSES) in error.value.message


def test_a_16_is_the_widest_unbounded_pool() -> None:
    pool = parse_ip_pool({"cidr": "10.1.0.0/16", "gateway": "10.1.0.1"}, "p")
    assert (pool["first"], pool["last"]) == ("10.1.0.1", "10.1.255.254")
    with pytest.raises(ValidationError) as error:
        parse_ip_pool({"cidr": "10.0.0.0/8", "gateway": "10.0.0.1", "first": "10.0.0.1", "last": "10.1.0.1"}, "p")
    assert error.value.field == "p.last"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"gateway": "10.20.0.0"}, "p.gateway"),  # the network address
        ({"gateway": "10.20.0.255"}, "p.gateway"),  # the broadcast address
        ({"gateway": "10.21.0.1"}, "p.gateway"),
        ({"first": "10.19.255.255"}, "p.first"),
        ({"last": "10.20.1.0"}, "p.last"),
        ({"first": "10.20.0.200", "last": "10.20.0.100"}, "p.first"),
        ({"dns": ["10.20.0.2"] * (MAX_DNS + 1)}, "p.dns"),
        ({"dns": ["10.20.0.2\x00"]}, "p.dns[0]"),
        ({"cidr": "10.20.0.0/24\n"}, "p.cidr"),
        ({"cidr": "10.20.0.0/31"}, "p.cidr"),
    ],
)
def test_pool_nonsense_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_ip_pool({"cidr": "10.20.0.0/24", "gateway": "10.20.0.1", **changes}, "p")
    assert error.value.field == field


def test_a_stage_holds_a_bounded_number_of_pools() -> None:
    pools = [{"cidr": f"10.{i}.0.0/24", "gateway": f"10.{i}.0.1"} for i in range(33)]
    with pytest.raises(ValidationError) as error:
        parse_ip_pools(pools, "ip_pools")
    assert error.value.field == "ip_pools"
    assert len(parse_ip_pools(pools[:32], "ip_pools")) == 32
