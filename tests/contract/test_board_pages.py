"""The board's page query on every persistence: readable services only (inside the query, before
the limit), name order behind a keyset cursor, each stage bounded with counts of all it holds."""

from __future__ import annotations

from adapters.runtime import Runtime
from tests.support import THREE_TIER, stages


def test_board_pages_filter_before_the_limit_and_bound_each_stage(runtime: Runtime) -> None:
    app = runtime.app
    app.import_templates(None, True, actor="a")
    ids = {
        name: app.register_service(name, "", stages("int", "test", pools=f"{name}-"), actor="a").value.id
        for name in ("delta", "Alpha", "charlie", "bravo")
    }
    retired = app.register_service("aardvark", "", stages("int", pools="aa-"), actor="a").value.id
    app.retire_service(retired, actor="a")
    configuration_id = app.create_configuration(
        ids["charlie"], "p3", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value.id
    made = [str(app.deploy(configuration_id, "int", actor="a").value.id) for _ in range(3)]
    gone = app.deploy(configuration_id, "test", actor="a").value.id
    app.undeploy(gone, actor="a")
    runtime.catch_up()
    models = runtime.read_models

    first, after = models.board_page(None, 2)
    assert [s["name"] for s in first] == ["Alpha", "bravo"]
    assert after is not None
    second, after = models.board_page(None, 2, after)
    assert [s["name"] for s in second] == ["charlie", "delta"]
    assert after is None  # the last page: no empty page behind it

    # The readable set is applied before the limit: the page is full of readable services.
    readable = {str(ids["bravo"]), str(ids["delta"])}
    assert [s["name"] for s in models.board_page(readable, 2)[0]] == ["bravo", "delta"]
    assert models.board_page(set(), 50) == ([], None)

    [charlie], _ = models.board_page(None, 50, prefix="CH", per_stage=2)
    cells = {s["name"]: s for s in charlie["stages"]}
    assert [d["id"] for d in cells["int"]["deployments"]] == made[:2]
    assert (cells["int"]["count"], cells["int"]["more"]) == (3, 1)
    assert sum(cells["int"]["counts"].values()) == 3
    assert (cells["test"]["count"], cells["test"]["deployments"]) == (0, [])  # undeployed: off the board
    [only_test], _ = models.board_page(None, 50, service_id=str(ids["charlie"]), stage="TEST")
    assert [s["name"] for s in only_test["stages"]] == ["test"]
    assert models.board_page(None, 50, prefix="a%")[0] == []


def test_board_entries_are_the_views_without_machines_after_every_change(runtime: Runtime) -> None:
    """The board reads a stored entry, not the view: it must follow the view through every write."""
    app = runtime.app
    app.import_templates(None, True, actor="a")
    service_id = app.register_service("echo", "", stages("int", pools="e-"), actor="a").value.id
    configuration_id = app.create_configuration(
        service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value.id
    first, second = (app.deploy(configuration_id, "int", actor="a").value.id for _ in range(2))
    runtime.catch_up()
    app.undeploy(first, actor="a")
    runtime.catch_up()
    models = runtime.read_models

    def without_machines(view: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in view.items() if k not in ("machines", "position")}

    views = {d["id"]: without_machines(d) for d in models.deployments(service_id=str(service_id))}
    [echo], _ = models.board_page(None, 50)
    [cell] = echo["stages"]
    assert cell["deployments"] == [views[str(second)]]
    # Written again after it was requested (the test runtime's workers deployed it): the entry followed.
    assert views[str(second)]["state"] == "deployed"
    assert models.board_entries() == {str(service_id): [views[str(second)]]}
    # The undeployed one left the board, and its entry says it is undeployed.
    changes = {e["id"]: e for e in models.board_changes(0)}
    assert changes[str(first)] == views[str(first)]
    assert changes[str(first)]["state"] == "undeployed"


def test_a_board_page_ends_before_the_service_that_would_pass_its_entry_budget(runtime: Runtime) -> None:
    """Services in name order listing 3, 1, 4 and 2 deployments: with 5 entries a page, the pages
    hold [a, b], [c] and [d]; every service is on exactly one page, in order, and the counts still
    cover every deployment."""
    app = runtime.app
    app.import_templates(None, True, actor="a")
    sizes = {"a": 3, "b": 1, "c": 4, "d": 2}
    for name, n in sizes.items():
        service_id = app.register_service(name, "", stages("int", pools=f"{name}-"), actor="a").value.id
        configuration_id = app.create_configuration(
            service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a"
        ).value.id
        for _ in range(n):
            app.deploy(configuration_id, "int", actor="a")
    runtime.catch_up()
    models = runtime.read_models

    def walk(max_entries: int, per_stage: int = 20) -> list[list[tuple[str, int, int]]]:
        pages, after = [], None
        while True:
            page, after = models.board_page(None, 50, after, per_stage=per_stage, max_entries=max_entries)
            pages.append([(s["name"], len(s["stages"][0]["deployments"]), s["stages"][0]["count"]) for s in page])
            if after is None:
                return pages

    assert walk(5) == [[("a", 3, 3), ("b", 1, 1)], [("c", 4, 4)], [("d", 2, 2)]]
    # A service listing more than the budget still makes a page of its own.
    assert walk(2) == [[("a", 3, 3)], [("b", 1, 1)], [("c", 4, 4)], [("d", 2, 2)]]
    # The budget counts what is listed (per_stage bounds it), not what the counts cover.
    assert walk(4, per_stage=2) == [[("a", 2, 3), ("b", 1, 1)], [("c", 2, 4), ("d", 2, 2)]]
    assert walk(10) == [[("a", 3, 3), ("b", 1, 1), ("c", 4, 4), ("d", 2, 2)]]
