"""A read model whose schema version changed is dropped, recreated and rebuilt at start-up."""

from __future__ import annotations

import pytest

from adapters.readstore import open_read_store
from adapters.runtime import Runtime
from adapters.settings import database
from projections.follower import ProjectionFollower
from projections.schema import install
from projections.services import ServicesProjection
from tests.support import runtime_for, stages


class ServicesWithNotes(ServicesProjection):
    """The services read model as a later release might shape it: one more column."""

    schema_version = ServicesProjection.schema_version + 1
    ddl = (
        ServicesProjection.ddl[0].replace("position BIGINT NOT NULL", "position BIGINT NOT NULL, note TEXT"),
        ServicesProjection.ddl[1],
    )


def test_a_changed_schema_version_recreates_the_tables_and_rebuilds_the_rows(database_url: str) -> None:
    if database_url == "memory://":
        pytest.skip("the in-memory store starts empty every time")
    first: Runtime = runtime_for(database_url)
    first.app.register_service("payroll", "", stages("int", "test"), actor="a")
    first.app.register_service("hr", "", stages("int", pools="hr-"), actor="a")
    first.catch_up()
    before = first.read_models.services()
    first.close()

    second = runtime_for(database_url)  # the same version: nothing is dropped
    assert second.read_models.services() == before
    with pytest.raises(Exception, match="note"):
        second.store.query("SELECT note FROM sk_services")
    second.close()

    # Start again with the changed projection (what a new release's start-up does).
    third = runtime_for(database_url)
    store = open_read_store(database(database_url))
    try:
        changed = ServicesWithNotes()
        install(store, [changed])
        assert store.query("SELECT COUNT(*) AS n FROM sk_services")[0]["n"] == 0
        ProjectionFollower(third.app, store, [changed]).catch_up()
        assert store.query("SELECT name, note FROM sk_services ORDER BY name") == [
            {"name": "hr", "note": None},
            {"name": "payroll", "note": None},
        ]
        assert store.query("SELECT version FROM sk_schema WHERE name = 'services'") == [
            {"version": changed.schema_version}
        ]
        install(store, [changed])  # and again: the version matches, the rows stay
        assert len(store.query("SELECT * FROM sk_services")) == 2
    finally:
        store.close()
        third.close()


def test_a_store_with_a_retired_read_model_starts_without_it(database_url: str) -> None:
    """A store built before the configuration history was served from the audit log: its table, tracking,
    version and quarantined positions are gone after start-up, and the history is read from the audit log."""
    if database_url == "memory://":
        pytest.skip("the in-memory store starts empty every time")
    first: Runtime = runtime_for(database_url)
    service_id = first.app.register_service("payroll", "", stages("int"), actor="a").value.id
    configuration_id = first.app.create_configuration(service_id, "p3", "", [], [], actor="a").value.id
    first.catch_up()
    # What an older version left behind (its DDL, tracking, version and a quarantined position).
    with first.store.transaction() as cursor:
        cursor.execute(
            "CREATE TABLE sk_configuration_history (configuration_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "at TEXT NOT NULL, actor TEXT, reason TEXT, event_type TEXT NOT NULL, summary TEXT NOT NULL, "
            "position BIGINT NOT NULL, PRIMARY KEY (configuration_id, version))"
        )
        cursor.execute("CREATE INDEX sk_configuration_history_at ON sk_configuration_history (configuration_id, at)")
        cursor.execute("INSERT INTO sk_tracking (name, position) VALUES ('configuration_history', 3)")
        cursor.execute("INSERT INTO sk_schema (name, version) VALUES ('configuration_history', 1)")
        cursor.execute(
            "INSERT INTO sk_quarantine (name, position, error, at) VALUES ('configuration_history', 2, 'x', 'y')"
        )
    first.close()

    second = runtime_for(database_url)
    try:
        for table in ("sk_tracking", "sk_schema", "sk_quarantine"):
            found = second.store.query(f"SELECT * FROM {table} WHERE name = 'configuration_history'")  # noqa: S608
            assert found == [], table
        with pytest.raises(Exception, match="sk_configuration_history"):
            second.store.query("SELECT * FROM sk_configuration_history")
        second.catch_up()
        assert [row["version"] for row in second.audit.history(str(configuration_id))] == [1]
    finally:
        second.close()
    runtime_for(database_url).close()  # and again: nothing left to drop
