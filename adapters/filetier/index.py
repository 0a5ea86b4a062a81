"""The tier's durable bookkeeping: one SQLite file in the tier root.

`chunks` has a row per chunk some put committed, with its reference count and stored size;
`manifests` holds every live put. A put writes here once, when it commits: chunk files it wrote
before are listed in its session journal (see store.py), so a put that dies is cleaned up by
`collect` from the journal, not from rows. SQLite's rollback journal (not WAL) keeps the file
usable on a network filesystem with POSIX locks.
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

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS chunks (hash TEXT PRIMARY KEY, size INTEGER NOT NULL, stored INTEGER NOT NULL,"
    " refs INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS chunks_unreferenced ON chunks (hash) WHERE refs = 0",
    "CREATE TABLE IF NOT EXISTS manifests (id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, chunks TEXT NOT NULL)",
)
# A put may name what it stores (`key`): committing it releases the live put of the same key, so a
# put redone after a crash (the first one committed, its caller killed before recording it) leaves
# no references behind. Added to tiers made before keys existed.
_KEYS = (
    "ALTER TABLE manifests ADD COLUMN key TEXT",
    "CREATE INDEX IF NOT EXISTS manifests_key ON manifests (key) WHERE key IS NOT NULL",
)


class TierIndex:
    def __init__(self, path: Path, params: ChunkParams) -> None:
        self.path = path
        wanted = json.dumps([params.min_size, params.avg_size, params.max_size])
        with self.connect() as conn, self.writing(conn):
            for statement in _SCHEMA:
                conn.execute(statement)
            if "key" not in {row[1] for row in conn.execute("PRAGMA table_info(manifests)")}:
                for statement in _KEYS:
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

    def commit(self, manifest: FileManifest, sizes: dict[str, tuple[int, int]], key: str | None = None) -> None:
        """The put's manifest and its references, in one transaction. `sizes`: digest -> (size, stored).
        A `key` replaces the live put of that key (its references are dropped in the same transaction)."""
        with self.connect() as conn, self.writing(conn):
            if key is not None:
                for (replaced,) in conn.execute("SELECT id FROM manifests WHERE key = ?", (key,)).fetchall():
                    self._release(conn, replaced)
            conn.execute(
                "INSERT INTO manifests (id, name, size, sha256, chunks, key) VALUES (?, ?, ?, ?, ?, ?)",
                (manifest.id, manifest.name, manifest.size, manifest.sha256, json.dumps(manifest.chunks), key),
            )
            for digest, count in Counter(manifest.chunks).items():
                size, stored = sizes[digest]
                conn.execute(
                    "INSERT INTO chunks (hash, size, stored, refs) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (hash) DO UPDATE SET refs = refs + excluded.refs, stored = excluded.stored",
                    (digest, size, stored, count),
                )

    def release(self, put_id: str) -> bool:
        """Drops a put's references; False when it was released before (or never committed)."""
        with self.connect() as conn, self.writing(conn):
            return self._release(conn, put_id)

    def release_key(self, key: str) -> bool:
        """Drops the references of the live put of `key`; False when there is none."""
        with self.connect() as conn, self.writing(conn):
            released = False
            for (put_id,) in conn.execute("SELECT id FROM manifests WHERE key = ?", (key,)).fetchall():
                released = self._release(conn, put_id) or released
            return released

    @staticmethod
    def _release(conn: sqlite3.Connection, put_id: str) -> bool:
        row = conn.execute("SELECT chunks FROM manifests WHERE id = ?", (put_id,)).fetchone()
        if row is None:
            return False
        for digest, count in Counter(json.loads(row[0])).items():
            conn.execute("UPDATE chunks SET refs = refs - ? WHERE hash = ?", (count, digest))
        conn.execute("DELETE FROM manifests WHERE id = ?", (put_id,))
        return True

    @staticmethod
    def unreferenced(conn: sqlite3.Connection) -> list[str]:
        return [row[0] for row in conn.execute("SELECT hash FROM chunks WHERE refs = 0 ORDER BY hash")]

    @staticmethod
    def referenced(conn: sqlite3.Connection, digest: str) -> bool:
        row = conn.execute("SELECT refs FROM chunks WHERE hash = ?", (digest,)).fetchone()
        return row is not None and int(row[0]) > 0

    @staticmethod
    def forget(conn: sqlite3.Connection, digest: str) -> None:
        conn.execute("DELETE FROM chunks WHERE hash = ? AND refs = 0", (digest,))

    def is_live(self, put_id: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM manifests WHERE id = ?", (put_id,)).fetchone() is not None

    def stats(self) -> TierStats:
        with self.connect() as conn:
            (logical,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM manifests").fetchone()
            stored, count = conn.execute("SELECT COALESCE(SUM(stored), 0), COUNT(*) FROM chunks").fetchone()
        return TierStats(logical_bytes=int(logical), stored_bytes=int(stored), chunks=int(count))
