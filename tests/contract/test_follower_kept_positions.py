"""A projection follower starts a pass from the positions its last batch committed (no read of
them, no read of the head, in the steady state), and still finds positions somebody else moved:
a reset (a rebuild from another process), another follower ahead of it, nothing new to read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.runtime import Runtime
from projections.follower import ProjectionFollower
from tests.support import runtime_for, stages


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    if database_url == "memory://":
        pytest.skip("the in-memory store has no tracking table another party could move")
    runtime = runtime_for(database_url)
    yield runtime
    runtime.close()


def follower(runtime: Runtime) -> ProjectionFollower:
    return ProjectionFollower(runtime.app, runtime.store, runtime.projections)


def described(runtime: Runtime) -> list[tuple[str, str]]:
    return [(s["name"], s["description"]) for s in runtime.read_models.services(True)]


def audited(runtime: Runtime) -> int:
    return int(runtime.store.query("SELECT COUNT(*) AS n FROM sk_audit")[0]["n"])


def test_a_reset_by_another_party_is_rebuilt_by_the_next_pass(runtime: Runtime) -> None:
    service = runtime.app.register_service("payroll", "", stages("int"), actor="a").value
    mine = follower(runtime)
    assert mine.catch_up() > 0
    before = audited(runtime)
    # Another process resets every read model (a rebuild): nothing new is in the log.
    with runtime.store.transaction() as cursor:
        for projection in runtime.projections:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        cursor.execute("UPDATE sk_tracking SET position = 0")
    assert audited(runtime) == 0
    assert mine.catch_up() > 0  # not "caught up" from the kept positions
    assert audited(runtime) == before
    # The same with a new event in the log after the reset.
    with runtime.store.transaction() as cursor:
        cursor.execute("UPDATE sk_tracking SET position = 0")
        for projection in runtime.projections:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
    runtime.app.update_service(service.id, "v2", actor="a")
    mine.catch_up()
    assert audited(runtime) == before + 1
    assert described(runtime) == [("payroll", "v2")]


def test_two_followers_take_turns_and_apply_each_event_once(runtime: Runtime) -> None:
    service = runtime.app.register_service("payroll", "", stages("int"), actor="a").value
    first, second = follower(runtime), follower(runtime)
    first.catch_up()
    for n in range(6):
        runtime.app.update_service(service.id, f"v{n}", actor="a")
        # Alternately one or the other is ahead: the one behind starts from positions moved since.
        (first if n % 2 else second).catch_up()
    first.catch_up()
    second.catch_up()
    assert described(runtime) == [("payroll", "v5")]
    head = runtime.app.head()
    assert audited(runtime) == head
    assert first.position() == second.position() == head


def test_a_steady_pass_reads_neither_the_positions_nor_the_head_outside_its_batch(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = runtime.app.register_service("payroll", "", stages("int"), actor="a").value
    mine = follower(runtime)
    mine.catch_up()
    outside: list[str] = []
    heads: list[int] = []
    original_positions, original_head = mine.positions, runtime.app.head

    def positions() -> dict[str, int]:
        outside.append("positions")
        return original_positions()

    def head() -> int:
        heads.append(1)
        return original_head()

    monkeypatch.setattr(mine, "positions", positions)
    monkeypatch.setattr(runtime.app, "head", head)
    runtime.app.update_service(service.id, "v2", actor="a")
    assert mine.catch_up() == 1
    assert outside == []
    assert heads == []
    # Nothing new: the kept positions are checked before the pass says so.
    assert mine.catch_up() == 0
    assert outside == ["positions"]
    assert described(runtime) == [("payroll", "v2")]


def test_a_batch_that_fails_forgets_the_kept_positions(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    service = runtime.app.register_service("payroll", "", stages("int"), actor="a").value
    mine = follower(runtime)
    mine.catch_up()
    runtime.app.update_service(service.id, "v2", actor="a")
    calls: list[Any] = []
    original = mine._apply

    def failing(*args: Any) -> None:
        calls.append(1)
        raise RuntimeError("a read model failed")

    monkeypatch.setattr(mine, "_apply", failing)
    monkeypatch.setattr(mine, "_apply_isolated", lambda notifications: None)
    mine.catch_up()
    assert calls == [1]
    monkeypatch.setattr(mine, "_apply", original)
    assert mine._committed is None
