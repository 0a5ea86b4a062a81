"""Creating read-model tables, and rebuilding a read model whose schema version changed.

Each projection declares `schema_version`; the version its tables were built with is kept in
`sk_schema` next to the tracking rows. When they differ at start-up, that read model's tables
are dropped, created again from its DDL and its tracking goes back to zero, so the followers
rebuild it from the first event. Callers run this under the schema lock (one process at a time).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from projections.base import Projection
from projections.store import TRACKING_DDL, Cursor, ReadStore, set_tracking

log = logging.getLogger(__name__)

SCHEMA_DDL = ("CREATE TABLE IF NOT EXISTS sk_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL)",)
QUARANTINE_DDL = (
    """CREATE TABLE IF NOT EXISTS sk_quarantine (
        name TEXT NOT NULL,
        position BIGINT NOT NULL,
        error TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (name, position)
    )""",
)
# A text column whose values are only ever compared as bytes (ids, fixed-width ISO times, names matched
# exactly or by prefix): PostgreSQL's "C" collation compares it with memcmp and sorts it on abbreviated
# keys (index builds, ANALYZE), and a plain b-tree index on it serves `LIKE 'prefix%'`, where the
# database's own collation (C.UTF-8 here) compares through the C library. Results are the same: equality
# does not depend on the collation, and C.UTF-8 orders by code point, which is UTF-8's byte order.
# SQLite's default collation (BINARY) already compares bytes: `_create` drops the clause there.
BYTEWISE = 'COLLATE "C"'
# Read models built before versions were recorded have the shape of version 1.
UNRECORDED_VERSION = 1
# Read models no longer kept (name -> tables): `install` drops a store's tables of them and forgets their
# tracking, version and quarantined positions, so a store built by an older version starts as a new one
# would. Nothing reads them; their rows were derived from the event store. `configuration_history`:
# its rows were the audit log's rows of configuration events, read from sk_audit since (audit_queries.py).
RETIRED: dict[str, tuple[str, ...]] = {"configuration_history": ("sk_configuration_history",)}


def install(store: ReadStore, projections: Sequence[Projection], followers: Sequence[str] = ()) -> None:
    """Create tracking and projection tables and tracking rows; rebuild read models whose
    schema version changed (idempotent)."""
    with store.transaction() as cursor:
        for ddl in (*TRACKING_DDL, *SCHEMA_DDL, *QUARANTINE_DDL):
            _create(store, cursor, ddl)
        retire(store, cursor)
        cursor.execute("SELECT name, version FROM sk_schema")
        recorded = {str(r["name"]): int(r["version"]) for r in cursor.fetchall()}
        for projection in projections:
            version = recorded.get(projection.name)
            if version is None and _exists(store, cursor, projection.tables[0]):
                version = UNRECORDED_VERSION
            if version is not None and version != projection.schema_version:
                log.warning(
                    "read model %s: schema version %s -> %s; dropping its tables and rebuilding it",
                    projection.name,
                    version,
                    projection.schema_version,
                )
                for table in projection.tables:
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
                cursor.execute("DELETE FROM sk_quarantine WHERE name = %s", (projection.name,))
                set_tracking(cursor, projection.name, 0)
            plain = secondary_indexes(projection)
            for ddl in projection.ddl:
                if ddl not in plain:
                    _create(store, cursor, ddl)
            cursor.execute(
                "INSERT INTO sk_schema (name, version) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                (projection.name, projection.schema_version),
            )
        for name in [p.name for p in projections] + list(followers):
            cursor.execute(
                "INSERT INTO sk_tracking (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
                (name,),
            )
    # Plain indexes one per transaction: one missing because a build from zero died before building
    # it may be created while another process's follower writes that table, and a transaction that
    # holds nothing else cannot deadlock with it.
    for projection in projections:
        for ddl in secondary_indexes(projection):
            with store.transaction() as cursor:
                _create(store, cursor, ddl)


def retire(store: ReadStore, cursor: Cursor) -> None:
    """Drop the tables and bookkeeping rows of the RETIRED read models (a no-op once they are gone)."""
    for name, tables in RETIRED.items():
        for table in tables:
            if _exists(store, cursor, table):
                log.info("read model %s is no longer kept; dropping %s", name, table)
                cursor.execute(f"DROP TABLE {table}")
        for bookkeeping in ("sk_tracking", "sk_schema", "sk_quarantine"):
            cursor.execute(f"DELETE FROM {bookkeeping} WHERE name = %s", (name,))  # noqa: S608


def secondary_indexes(projection: Projection) -> list[str]:
    """The projection's plain (non-unique) indexes: what a bulk rebuild drops and builds again after.

    Primary keys and unique constraints stay: `ON CONFLICT` needs them, and they keep the rows right.
    """
    return [ddl for ddl in projection.ddl if ddl.lstrip().upper().startswith("CREATE INDEX")]


def drop_indexes(cursor: Cursor, ddls: Sequence[str]) -> None:
    for ddl in ddls:
        cursor.execute(f"DROP INDEX IF EXISTS {_object_name(ddl)}")


def index_table(ddl: str) -> str:
    """The table a CREATE INDEX statement indexes."""
    match = re.search(r"\bON\s+(\w+)", ddl)
    if match is None:
        raise ValueError(f"not an index on a table: {ddl[:60]}")
    return match.group(1)


def truncate_empty(cursor: Cursor, tables: Sequence[str]) -> None:
    """PostgreSQL: each of `tables` that holds no row is given new, empty storage (TRUNCATE).

    A read model at position zero has no rows, but the rows a reset or rebuild deleted are still
    in its heap until a VACUUM (never, with autovacuum off): a rebuild's COPYs, index builds and
    ANALYZE then worked through them all, the heap growing by a whole read model each rebuild. A
    table with any row left (none should have one at position zero) is left as it is.
    """
    empty = []
    for table in tables:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table}) AS found")  # noqa: S608
        row = cursor.fetchone()
        if row is not None and not row["found"]:
            empty.append(table)
    if empty:
        cursor.execute(f"TRUNCATE {', '.join(empty)}")


def create_missing(store: ReadStore, cursor: Cursor, ddls: Sequence[str]) -> None:
    for ddl in ddls:
        _create(store, cursor, ddl)


def _create(store: ReadStore, cursor: Cursor, ddl: str) -> None:
    # Even "IF NOT EXISTS" DDL locks the table it names; against a running follower that can
    # deadlock, so statements whose object already exists are not run at all.
    if not _exists(store, cursor, _object_name(ddl)):
        cursor.execute(ddl if store.dialect == "postgres" else ddl.replace(f" {BYTEWISE}", ""))


def _object_name(ddl: str) -> str:
    match = re.search(r"IF NOT EXISTS\s+(\w+)", ddl)
    if match is None:
        raise ValueError(f"DDL must use IF NOT EXISTS: {ddl[:60]}")
    return match.group(1)


def _exists(store: ReadStore, cursor: Cursor, name: str) -> bool:
    if store.dialect == "postgres":
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (name,))
    else:
        cursor.execute("SELECT COUNT(*) > 0 AS found FROM sqlite_master WHERE name = %s", (name,))
    row = cursor.fetchone()
    return bool(row and row["found"])
