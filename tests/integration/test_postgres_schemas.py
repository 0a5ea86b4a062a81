"""Several Stagekeepers on one PostgreSQL database, each in its own schema."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from tests.support import POSTGRES_CONNINFO, POSTGRES_URL, THREE_TIER, postgres_schema, runtime_for, stages


def deploy_three_tier(runtime: Runtime) -> UUID:
    runtime.app.import_templates(None, True, actor="a")
    service_id = runtime.app.register_service("s", "", stages("int"), actor="a").value.id
    configuration_id = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value.id
    return runtime.app.deploy(configuration_id, "int", actor="a").value.id


def wait_deployed(runtime: Runtime, deployment_id: UUID, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while runtime.app.deployment(deployment_id).state != "deployed":
        assert time.monotonic() < deadline, f"still {runtime.app.deployment(deployment_id).state}"
        time.sleep(0.05)


@pytest.fixture
def runtimes() -> Iterator[list[Runtime]]:
    built: list[Runtime] = []
    try:
        yield built
    finally:
        close_all(built)


def close_all(runtimes: list[Runtime]) -> None:
    while runtimes:
        runtimes.pop().close()


def test_two_stagekeepers_on_two_schemas_of_one_database_both_deploy(runtimes: list[Runtime]) -> None:
    with postgres_schema() as first_url, postgres_schema() as second_url:
        first = runtime_for(first_url)
        runtimes.append(first)
        second = runtime_for(second_url)
        runtimes.append(second)
        first.start_workers()
        second.start_workers()
        deployments = [(first, deploy_three_tier(first)), (second, deploy_three_tier(second))]
        for runtime, deployment_id in deployments:
            wait_deployed(runtime, deployment_id)
        assert first.process_thread.leader
        assert second.process_thread.leader
        close_all(runtimes)  # before the schemas are dropped


def test_a_standby_waiting_past_the_bound_says_so_on_healthz(runtimes: list[Runtime]) -> None:
    with postgres_schema() as url:
        leader = runtime_for(url)
        runtimes.append(leader)
        leader.start_workers()
        standby = runtime_for(url, leadership_wait_warning_seconds=0.3)
        runtimes.append(standby)
        app = create_app(standby.settings, runtime=standby)
        with TestClient(app) as client:
            assert client.get("/healthz").json()["warnings"] == {}
            time.sleep(0.5)
            health = client.get("/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert body["process_manager"]["leader"] is False
        assert body["process_manager"]["waiting_for_leadership_seconds"] >= 0.3
        assert "waiting" in body["warnings"]["process_manager"]
        close_all(runtimes)


def test_a_schema_that_does_not_exist_yet_is_created_at_start_up() -> None:
    schema = f"sk_new_{uuid.uuid4().hex[:10]}"
    try:
        runtime = runtime_for(f"{POSTGRES_URL}?schema={schema}")
        try:
            deployment_id = deploy_three_tier(runtime)
            runtime.catch_up()
            assert runtime.app.deployment(deployment_id).state == "deployed"
        finally:
            runtime.close()
        with psycopg.connect(POSTGRES_CONNINFO) as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        assert found is not None
    finally:
        with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))
