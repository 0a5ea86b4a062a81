"""Settings parsing: clear errors naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

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
    # Concurrent writes share transactions, unless turned off.
    assert env["APPLICATION_RECORDER_TOPIC"] == "adapters.eventstore:GroupCommitRecorder"
    assert "APPLICATION_RECORDER_TOPIC" not in event_store_env(db, group_commit=False)


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


@pytest.mark.parametrize("spelling", ["on", "ON", "yes", "Yes", "true", "TRUE", "1"])
def test_every_documented_spelling_of_true_turns_start_tls_on(spelling: str) -> None:
    assert Settings.from_env({"STAGEKEEPER_LDAP_START_TLS": spelling}).ldap_start_tls is True


@pytest.mark.parametrize("spelling", ["off", "Off", "no", "NO", "false", "False", "0"])
def test_every_documented_spelling_of_false_turns_tls_verification_off(spelling: str) -> None:
    assert Settings.from_env({"STAGEKEEPER_VCENTER_VERIFY_TLS": spelling}).vcenter_verify_tls is False


@pytest.mark.parametrize(
    "name",
    ["STAGEKEEPER_LDAP_START_TLS", "STAGEKEEPER_VCENTER_VERIFY_TLS", "STAGEKEEPER_SERVE_WORKERS"],
)
def test_a_flag_that_is_neither_on_nor_off_stops_start_up_naming_the_variable(name: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}: .*'junk'$"):
        Settings.from_env({name: "junk"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STAGEKEEPER_POLL_SECONDS", "0"),
        ("STAGEKEEPER_MAX_BODY_BYTES", "lots"),
        ("STAGEKEEPER_WEBMKS_PORT", "70000"),
        ("STAGEKEEPER_UNAVAILABLE_SECONDS", "-1"),
        ("STAGEKEEPER_LEADERSHIP_WAIT_WARNING_SECONDS", "never"),
    ],
)
def test_numbers_out_of_bounds_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}: "):
        Settings.from_env({name: value})


def test_settings_shared_by_every_branch_read_their_variables() -> None:
    settings = Settings.from_env(
        {
            "STAGEKEEPER_UNAVAILABLE_SECONDS": "2.5",
            "STAGEKEEPER_MAX_BODY_BYTES": "2048",
            "STAGEKEEPER_MAX_STREAMS_PER_CALLER": "3",
            "STAGEKEEPER_LEADERSHIP_WAIT_WARNING_SECONDS": "10",
            "STAGEKEEPER_SESSION_IDLE_MINUTES": "15",
            "STAGEKEEPER_SESSION_SECRET": "s3cret",
            "STAGEKEEPER_WEBMKS_PORT": "9443",
            "STAGEKEEPER_SERVE_WORKERS": "off",
        }
    )
    assert (
        settings.unavailable_seconds,
        settings.max_body_bytes,
        settings.max_streams_per_caller,
        settings.leadership_wait_warning_seconds,
        settings.session_idle_minutes,
        settings.session_secret,
        settings.webmks_port,
        settings.run_workers,
    ) == (2.5, 2048, 3, 10.0, 15, "s3cret", 9443, False)
    defaults = Settings.from_env({})
    assert (defaults.unavailable_seconds, defaults.max_body_bytes, defaults.session_secret) == (5.0, 1_048_576, None)


def test_a_database_password_does_not_appear_in_the_error() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"STAGEKEEPER_DATABASE_URL": "postgresql://sk:hunter2@db:notaport/sk"})
    assert "STAGEKEEPER_DATABASE_URL" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_the_command_line_prints_a_bad_setting_in_one_line_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEKEEPER_")}
    env["STAGEKEEPER_LDAP_START_TLS"] = "perhaps"
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "stagekeeper: STAGEKEEPER_LDAP_START_TLS: must be on/off, yes/no, true/false or 1/0, not 'perhaps'"
    ]


def test_a_password_with_a_space_and_a_quote_survives_the_conninfo() -> None:
    db = database("postgresql://sk:it%27s%20a%20secret@db.example:5432/stagekeeper")
    assert conninfo_to_dict(db.conninfo)["password"] == "it's a secret"
