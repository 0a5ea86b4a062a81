"""A database password with a space and a quote: every connection Stagekeeper opens still works."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from adapters.settings import database
from tests.support import POSTGRES_CONNINFO, runtime_for, stages

PASSWORD = "it's a secret"


@pytest.fixture
def role_and_schema() -> Iterator[tuple[str, str]]:
    """A login role with PASSWORD owning a fresh schema; both dropped afterwards."""
    role = f"sk_pw_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD)))
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(role), sql.Identifier(role)))
    try:
        yield role, role
    finally:
        with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_password_with_a_space_and_a_quote_reaches_the_event_store_and_the_read_store(
    role_and_schema: tuple[str, str],
) -> None:
    role, schema = role_and_schema
    url = f"postgresql://{role}:{quote(PASSWORD, safe='')}@127.0.0.1:5432/test?schema={schema}"
    parsed = conninfo_to_dict(database(url).conninfo)
    assert (parsed["user"], parsed["password"]) == (role, PASSWORD)
    runtime = runtime_for(url)
    try:
        service_id = runtime.app.register_service("payroll", "", stages("int"), actor="a").value.id
        runtime.catch_up()
        # The list comes from the read store (its own pool and lock connections, same conninfo).
        assert [s["id"] for s in runtime.read_models.services()] == [str(service_id)]
        assert runtime.store.try_lock("process:deployments")
        assert runtime.store.holds_lock("process:deployments")
        with psycopg.connect(POSTGRES_CONNINFO) as conn:
            users = conn.execute("SELECT DISTINCT usename FROM pg_stat_activity WHERE usename = %s", (role,)).fetchall()
        assert users == [(role,)]
    finally:
        runtime.close()


def test_a_schema_the_user_may_not_create_stops_start_up_in_one_line(role_and_schema: tuple[str, str]) -> None:
    role, _ = role_and_schema
    # Only a database's owner (and superusers) may create schemas in it unless granted: not this role.
    url = f"postgresql://{role}:{quote(PASSWORD, safe='')}@127.0.0.1:5432/test?schema=sk_missing_{role}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEKEEPER_")}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "worker"],
        env={**env, "STAGEKEEPER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"stagekeeper: STAGEKEEPER_DATABASE_URL: schema 'sk_missing_{role}' does not exist "
        f"and user '{role}' may not create it"
    ]
