"""A resource pool that holds, or sits inside, another service's pool is refused, naming it."""

from __future__ import annotations

import pytest

from adapters.runtime import Runtime
from domain.commands.placement import POOL_CLAIMS
from domain.errors import ConflictError
from domain.names import NameClaim
from domain.pool_plan import POOL_PLAN_ID, PoolPlan
from tests.support import ROOT_POOL


def stage(name: str, pool: str) -> dict[str, object]:
    return {"name": name, "resource_pool": f"{ROOT_POOL}{pool}", "restricted": False}


def test_the_cluster_root_and_pools_under_it_never_serve_two_services(runtime: Runtime) -> None:
    app = runtime.app
    root = app.register_service("everything", "", [stage("int", "")], actor="a").value
    with pytest.raises(ConflictError) as inside:
        app.register_service("payroll", "", [stage("int", "/payroll")], actor="a")
    assert str(inside.value) == (
        f"stages: resource pool '{ROOT_POOL}/payroll' is inside resource pool '{ROOT_POOL}' "
        "of stage 'int' of service 'everything'"
    )
    app.retire_service(root.id, actor="a")

    team = app.register_service("team", "", [stage("int", "/team/int"), stage("test", "/team/test")], actor="a").value
    payroll = app.register_service("payroll", "", [stage("int", "/teamwork")], actor="a").value  # a sibling
    for pool, how in (("/team", "holds"), ("", "holds"), ("/team/int/deeper", "is inside")):
        with pytest.raises(ConflictError) as refused:
            app.add_stage(payroll.id, stage("qa", pool), None, actor="a")
        assert refused.value.field == "resource_pool"
        assert str(refused.value).startswith(f"resource_pool: resource pool '{ROOT_POOL}{pool}' {how} resource pool")
        assert str(refused.value).endswith("of service 'team'")
    with pytest.raises(ConflictError) as holds:
        app.update_stage(payroll.id, "int", {"resource_pool": ROOT_POOL}, actor="a")
    assert str(holds.value) == (
        f"resource_pool: resource pool '{ROOT_POOL}' holds resource pool '{ROOT_POOL}/team/int' of stage 'int' "
        "of service 'team'"
    )
    assert [s["resource_pool"] for s in app.service(payroll.id).stages] == [f"{ROOT_POOL}/teamwork"]
    app.retire_service(team.id, actor="a")
    app.add_stage(payroll.id, stage("qa", "/team"), None, actor="a")
    runtime.catch_up()
    [last] = runtime.store.query(
        "SELECT summary FROM sk_audit WHERE event_type = %s ORDER BY position DESC LIMIT 1",
        ("PoolPlan.ServicePoolsSet",),
    )
    assert last["summary"] == f"resource pools of service 'payroll': int {ROOT_POOL}/teamwork, qa {ROOT_POOL}/team"


def test_a_pool_claimed_before_the_pool_plan_still_keeps_pools_out_from_under_it(runtime: Runtime) -> None:
    app = runtime.app
    old = app.register_service("old", "", [stage("int", "/old")], actor="a").value
    # An older store: the pool's claim exists, the pool plan has never heard of the service.
    plan: PoolPlan = app.repository.get(POOL_PLAN_ID)
    plan.set_service(old.id, "old", {}, frozenset(), "stages")
    app.commit(plan)
    assert app.repository.get(NameClaim.id_for(POOL_CLAIMS, "", f"{ROOT_POOL}/old")).owner_id == old.id
    with pytest.raises(ConflictError) as inside:
        app.register_service("new", "", [stage("int", "/old/new")], actor="a")
    assert str(inside.value) == (
        f"stages: resource pool '{ROOT_POOL}/old/new' is inside resource pool '{ROOT_POOL}/old' "
        "of stage 'int' of service 'old'"
    )
