"""The ReadStore contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.readstore import open_read_store
from adapters.settings import database
from projections.store import ReadStore
from tests.support import postgres_schema


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadStore]:
    if request.param == "sqlite":
        s = open_read_store(database(f"sqlite:///{tmp_path}/read.db"))
        yield s
        s.close()
    else:
        with postgres_schema() as url:
            s = open_read_store(database(url))
            yield s
            s.close()


def test_a_transaction_commits_together_or_not_at_all(store: ReadStore) -> None:
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)")

    def insert_then_fail() -> None:
        with store.transaction() as cursor:
            cursor.execute("INSERT INTO t (k, v) VALUES (%s, %s)", ("a", 1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        insert_then_fail()
    assert store.query("SELECT * FROM t") == []
    with store.transaction() as cursor:
        cursor.executemany("INSERT INTO t (k, v) VALUES (%s, %s)", [("a", 1), ("b", 2)])
        cursor.execute("INSERT INTO t (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v", ("a", 9))
    assert store.query("SELECT k, v FROM t ORDER BY k") == [{"k": "a", "v": 9}, {"k": "b", "v": 2}]


def test_a_relaxed_transaction_commits_together_or_not_at_all(store: ReadStore) -> None:
    """`relaxed`: the same transaction, committed without waiting for the WAL flush on PostgreSQL; the
    connection it used goes back to the pool as it was (the next transactions are the default ones)."""
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)")

    def insert_then_fail() -> None:
        with store.transaction(relaxed=True) as cursor:
            cursor.execute("INSERT INTO t (k, v) VALUES (%s, %s)", ("x", 1))
            raise RuntimeError("boom")

    def insert_twice() -> None:  # fails in the database
        with store.transaction(relaxed=True) as cursor:
            cursor.execute("INSERT INTO t (k, v) VALUES (%s, %s)", ("b", 1))
            cursor.execute("INSERT INTO t (k, v) VALUES (%s, %s)", ("b", 2))

    for _ in range(6):  # more than the pool's connections
        with pytest.raises(RuntimeError):
            insert_then_fail()
        with store.transaction(relaxed=True) as cursor:
            if store.dialect == "postgres":
                cursor.execute("SHOW synchronous_commit")
                assert cursor.fetchone() == {"synchronous_commit": "off"}
            cursor.execute("INSERT INTO t (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = t.v + 1", ("a", 1))
        with pytest.raises(Exception, match=r"duplicate|UNIQUE"):
            insert_twice()
        with store.transaction() as cursor:
            if store.dialect == "postgres":
                cursor.execute("SHOW synchronous_commit")
                assert cursor.fetchone() == {"synchronous_commit": "on"}
            cursor.execute("INSERT INTO t (k, v) VALUES (%s, %s)", ("c", 1))
            cursor.execute("DELETE FROM t WHERE k = %s", ("c",))
    assert store.query("SELECT k, v FROM t ORDER BY k") == [{"k": "a", "v": 6}]


def test_stream_yields_every_row_in_order(store: ReadStore) -> None:
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS n (i INTEGER PRIMARY KEY)")
        cursor.executemany("INSERT INTO n (i) VALUES (%s)", [(i,) for i in range(2500)])
    assert [r["i"] for r in store.stream("SELECT i FROM n ORDER BY i", batch=100)] == list(range(2500))


def test_a_lock_is_held_by_one_owner_at_a_time(store: ReadStore, tmp_path: Path) -> None:
    assert store.try_lock("leader")
    result: list[bool] = []
    # Another process would open its own store; a second store object is the same from the lock's view.
    other = open_read_store(database(_url_of(store, tmp_path)))
    thread = threading.Thread(target=lambda: result.append(other.try_lock("leader")))
    thread.start()
    thread.join()
    assert result == [False]
    store.close()
    assert other.try_lock("leader")
    other.close()


def _url_of(store: ReadStore, tmp_path: Path) -> str:
    if store.dialect == "sqlite":
        return f"sqlite:///{tmp_path}/read.db"
    from adapters.readstore import PostgresReadStore

    assert isinstance(store, PostgresReadStore)
    db = store._db
    return f"postgresql://{db.user}@{db.host}:{db.port}/{db.dbname}?schema={db.schema}"
