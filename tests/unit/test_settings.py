"""Settings parsing: clear errors naming the variable."""

from __future__ import annotations

import pytest

from adapters.settings import Settings, SettingsError, database, event_store_env


def test_defaults_are_the_embedded_setup() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///./stagekeeper.db"
    assert settings.vcenter_driver == "simulated"


def test_postgres_urls_become_library_settings() -> None:
    db = database("postgresql://sk:p%40ss@db.example:6543/stagekeeper?schema=prod")
    assert (db.kind, db.host, db.port, db.user, db.password, db.dbname, db.schema) == (
        "postgres",
        "db.example",
        6543,
        "sk",
        "p@ss",
        "stagekeeper",
        "prod",
    )
    env = event_store_env(db)
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_SCHEMA"] == "prod"
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in env


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"STAGEKEEPER_DATABASE_URL": "mysql://x"}, "STAGEKEEPER_DATABASE_URL"),
        ({"STAGEKEEPER_DATABASE_URL": "postgresql:///nohost"}, "STAGEKEEPER_DATABASE_URL"),
        ({"STAGEKEEPER_VCENTER_DRIVER": "esxcli"}, "STAGEKEEPER_VCENTER_DRIVER"),
        ({"STAGEKEEPER_READ_WAIT_SECONDS": "soon"}, "STAGEKEEPER_READ_WAIT_SECONDS"),
        ({"STAGEKEEPER_VCENTER_PARALLEL_TASKS": "0"}, "STAGEKEEPER_VCENTER_PARALLEL_TASKS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)
