"""The tier's durable bookkeeping: one SQLite file in the tier root.

`chunks` has a row for every chunk file that may exist (the row is written before the file) with
its reference count; `manifests` holds every live put; `pending` holds the chunks a put in progress
relies on, so `collect` never deletes a chunk a put has found on disk but not yet committed.
SQLite's rollback journal (not WAL) keeps it usable on a network filesystem with POSIX locks.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from adapters.filetier.chunking import ChunkParams
from adapters.filetier.manifest import FileManifest, TierMismatchError, TierStats

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    hash TEXT PRIMARY KEY, size INTEGER NOT NULL, stored INTEGER, refs INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_unreferenced ON chunks (hash) WHERE refs = 0;
CREATE TABLE IF NOT EXISTS pending (session TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (session, hash));
CREATE TABLE IF NOT EXISTS manifests (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, chunks TEXT NOT NULL
);
"""


class TierIndex:
    def __init__(self, path: Path, params: ChunkParams) -> None:
        self.path = path
        wanted = json.dumps([params.min_size, params.avg_size, params.max_size])
        with self.connect() as conn, self.writing(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('chunk_params', ?)", (wanted,))
            (found,) = conn.execute("SELECT value FROM meta WHERE key = 'chunk_params'").fetchone()
        if found != wanted:
            raise TierMismatchError(f"tier {path.parent} was made with chunk sizes {found}, not {wanted}")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=120, isolation_level=None)) as conn:
            conn.execute("PRAGMA synchronous = FULL")
            yield conn

    @staticmethod
    @contextmanager
    def writing(conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction, taking the write lock first so read-then-write decisions hold."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def hold(self, conn: sqlite3.Connection, session: str, digest: str, size: int) -> None:
        """Before a put looks for a chunk on disk: the chunk is kept until the put commits or dies."""
        with self.writing(conn):
            conn.execute("INSERT OR IGNORE INTO chunks (hash, size, refs) VALUES (?, ?, 0)", (digest, size))
            conn.execute("INSERT OR IGNORE INTO pending (session, hash) VALUES (?, ?)", (session, digest))

    def commit(self, conn: sqlite3.Connection, session: str, manifest: FileManifest, stored: dict[str, int]) -> None:
        """The put's manifest and its references, in one transaction."""
        with self.writing(conn):
            conn.execute(
                "INSERT INTO manifests (id, name, size, sha256, chunks) VALUES (?, ?, ?, ?, ?)",
                (manifest.id, manifest.name, manifest.size, manifest.sha256, json.dumps(manifest.chunks)),
            )
            for digest, count in Counter(manifest.chunks).items():
                conn.execute(
                    "UPDATE chunks SET refs = refs + ?, stored = COALESCE(stored, ?) WHERE hash = ?",
                    (count, stored[digest], digest),
                )
            conn.execute("DELETE FROM pending WHERE session = ?", (session,))

    def drop_session(self, session: str) -> None:
        with self.connect() as conn, self.writing(conn):
            self.drop_pending(conn, session)

    def release(self, put_id: str) -> bool:
        """Drops a put's references; False when it was released before (or never committed)."""
        with self.connect() as conn, self.writing(conn):
            row = conn.execute("SELECT chunks FROM manifests WHERE id = ?", (put_id,)).fetchone()
            if row is None:
                return False
            for digest, count in Counter(json.loads(row[0])).items():
                conn.execute("UPDATE chunks SET refs = refs - ? WHERE hash = ?", (count, digest))
            conn.execute("DELETE FROM manifests WHERE id = ?", (put_id,))
        return True

    @staticmethod
    def pending_sessions(conn: sqlite3.Connection) -> list[str]:
        return [row[0] for row in conn.execute("SELECT DISTINCT session FROM pending")]

    @staticmethod
    def drop_pending(conn: sqlite3.Connection, session: str) -> None:
        conn.execute("DELETE FROM pending WHERE session = ?", (session,))

    @staticmethod
    def unreferenced(conn: sqlite3.Connection) -> list[str]:
        """Chunks no live put refers to and no put in progress holds."""
        rows = conn.execute(
            "SELECT hash FROM chunks WHERE refs = 0 AND hash NOT IN (SELECT hash FROM pending) ORDER BY hash"
        )
        return [row[0] for row in rows]

    @staticmethod
    def forget(conn: sqlite3.Connection, digest: str) -> None:
        conn.execute("DELETE FROM chunks WHERE hash = ? AND refs = 0", (digest,))

    def is_live(self, put_id: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM manifests WHERE id = ?", (put_id,)).fetchone() is not None

    def stats(self) -> TierStats:
        with self.connect() as conn:
            (logical,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM manifests").fetchone()
            stored, count = conn.execute(
                "SELECT COALESCE(SUM(stored), 0), COUNT(*) FROM chunks WHERE stored IS NOT NULL"
            ).fetchone()
        return TierStats(logical_bytes=int(logical), stored_bytes=int(stored), chunks=int(count))
