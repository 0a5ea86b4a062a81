"""A capture refused over an address names its holder only to callers who may read its service."""

from __future__ import annotations

from uuid import UUID, uuid4, uuid5

from api.routes.capture import holders_from


def row(service: str, state: str = "deployed") -> dict[str, object]:
    return {
        "id": str(uuid4()), "service_id": service, "state": state, "stage": "prod",
        "configuration_name": "payroll", "machines": [{"name": "db"}],
    }  # fmt: skip


def test_a_holder_in_a_readable_service_is_named_in_full_and_another_is_not() -> None:
    mine, theirs, gone = row("svc-mine"), row("svc-theirs"), row("svc-mine", state="undeployed")
    holders = holders_from([mine, theirs, gone], readable={"svc-mine"})
    named = holders[uuid5(UUID(str(mine["id"])), "db")]
    assert str(mine["id"]) in named
    assert "payroll" in named
    assert "svc-mine" in named
    hidden = holders[uuid5(UUID(str(theirs["id"])), "db")]
    assert hidden == "a live deployment of a service you cannot read"
    assert "svc-theirs" not in hidden
    assert str(theirs["id"]) not in hidden
    assert len(holders) == 2  # an undeployed deployment holds nothing


def test_an_administrator_reads_every_holder() -> None:
    theirs = row("svc-theirs")
    holders = holders_from([theirs], readable=None)
    assert "svc-theirs" in next(iter(holders.values()))
