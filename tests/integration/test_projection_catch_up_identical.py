"""Issue 15: a batched catch-up (bulk COPY, the faster tag parsing and NUL escaping) leaves every
read model byte-identical to an event-by-event application, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.runtime import Runtime
from projections.follower import ProjectionFollower
from tests.support import THREE_TIER, machine, postgres_schema, runtime_for, stages


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with postgres_schema() as url:
        runtime = runtime_for(url)
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def history(runtime: Runtime) -> None:
    """Services, stages, grants, configurations with many versions, and deployments: every read model gets rows."""
    app = runtime.app
    for s in range(3):
        service_id = app.register_service(
            f"svc{s}", "first", stages("int", "test", pools=f"s{s}-"), actor="alice"
        ).value.id
        app.update_service(service_id, f"described {s}", actor="bob", reason="why\tnot", name=f"service {s}")
        app.add_stage(service_id, {"name": "prod", "resource_pool": f"/DC0/host/DC0_C0/Resources/p{s}"}, None, "bob")
        app.grant_role(service_id, "viewer", f"user{s}", None, None, actor="alice")
        configuration_id = app.create_configuration(
            service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="alice"
        ).value.id
        for i in range(25):
            if i % 3 == 0:
                app.change_machine(
                    configuration_id, "web1", machine("web1", cpus=1 + i % 7), actor="bob", reason=f"#{i}"
                )
            elif i % 3 == 1:
                app.add_machine(configuration_id, machine(f"extra{i}"), actor="carol")
            else:
                app.revise_configuration(configuration_id, {"description": f"rev {i} é ✓"}, actor="dave")
        app.deploy(configuration_id, "int", actor="erin", reason="first")


def contents(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    tables = sorted({t for p in runtime.projections for t in p.tables})
    found = {}
    for table in tables:
        rows = runtime.store.query(f"SELECT * FROM {table}")  # noqa: S608
        found[table] = sorted((tuple(sorted((k, repr(v)) for k, v in r.items())) for r in rows), key=repr)
    return found


def reset(runtime: Runtime) -> None:
    with runtime.store.transaction() as cursor:
        for projection in runtime.projections:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            cursor.execute("UPDATE sk_tracking SET position = 0 WHERE name = %s", (projection.name,))


def test_batched_catch_up_equals_an_event_by_event_application(runtime: Runtime) -> None:
    history(runtime)
    head = runtime.app.head()
    assert head > 100
    # Small batches: many of them, the last one short.
    batched = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7)
    assert runtime.store.dialect == "postgres"
    assert batched.catch_up() == head
    built = contents(runtime)
    assert all(built[t] for t in ("sk_audit", "sk_configuration_history", "sk_services")), built.keys()

    reset(runtime)
    # The reference: each event applied alone, in its own savepoint.
    one_by_one = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    notifications = runtime.app.select_notifications(1, head)
    assert len(notifications) == head
    one_by_one._apply_isolated(notifications)
    assert one_by_one.position() == head
    assert contents(runtime) == built

    reset(runtime)
    default = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    assert default.catch_up() == head
    assert contents(runtime) == built


def test_batched_catch_up_stops_at_until(runtime: Runtime) -> None:
    history(runtime)
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=5)
    follower.catch_up(until=20)
    assert 20 <= follower.position() < 25
    follower.catch_up()
    assert follower.position() == runtime.app.head()
