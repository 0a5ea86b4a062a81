"""The event store's pool pings a connection only when its socket is not quiet (adapters/pgcheck.py)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from adapters.pgcheck import quiet_or_checked
from adapters.runtime import Runtime
from tests.support import POSTGRES_CONNINFO, runtime_for, stages


def test_a_quiet_connection_is_handed_out_without_a_round_trip() -> None:
    with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
        queries: list[Any] = []
        execute = conn.execute

        def counted(*a: Any, **k: Any) -> Any:
            queries.append(a)
            return execute(*a, **k)

        conn.execute = counted  # type: ignore[method-assign]
        quiet_or_checked(conn)  # nothing to read: no query goes out
        assert queries == []
        conn.close()
        with pytest.raises(psycopg.OperationalError):
            quiet_or_checked(conn)


def test_a_connection_ended_by_the_server_is_discarded_and_replaced() -> None:
    with ConnectionPool(POSTGRES_CONNINFO, min_size=1, max_size=1, check=quiet_or_checked, open=True) as pool:
        with pool.connection() as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)  # the FATAL message and the close reach the idle socket
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != pid


def test_a_command_after_the_server_ended_pooled_connections_succeeds(postgres_url: str) -> None:
    runtime: Runtime = runtime_for(postgres_url)
    try:
        pool = runtime.app.recorder.wrapped.datastore.pool  # type: ignore[attr-defined]
        assert pool._check is quiet_or_checked
        service = runtime.app.register_service("s", "", stages("int"), actor="a").value
        # The pool hands its idle connections out in turn: a command takes three (the service's
        # read, the claims' read, the insert). The server ends the insert's (an administrator, an
        # idle timeout) while it sits in the pool. (A read would retry past a dead one.)
        victims = [list(pool._pool)[2].info.backend_pid]
        with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (victims,))
        time.sleep(0.2)  # the FATAL message and the close reach the idle sockets
        # Inserts are tried once (domain/outage.py): the insert must not be handed a dead connection.
        runtime.app.update_service(service.id, "after the terminate", actor="a")
        assert runtime.app.service(service.id).description == "after the terminate"
        assert not set(victims) & {c.info.backend_pid for c in pool._pool}
    finally:
        runtime.close()
