"""FileTier: archived VM files kept compressed (zstandard) and deduplicated by content.

Layout of the tier root:
    chunks/ab/cd/<sha256>.zst   one zstandard frame per chunk, named by the SHA-256 of its content
    tier.db                     SQLite: reference counts, live manifests, chunks held by puts in progress
    sessions/<id>.lock          flock'd by a put while it runs: a lock anyone can take is a dead put's
    tmp/<id>-<n>.part           a chunk being written; renamed into chunks/ only once complete and fsync'd
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import zstandard

from adapters.filetier.chunking import DEFAULT_PARAMS, ByteSink, ByteSource, ChunkParams, iter_chunks
from adapters.filetier.index import TierIndex
from adapters.filetier.manifest import (
    ChunkCorrupted,
    FileCorrupted,
    FileManifest,
    TierStats,
    check_digest,
    check_name,
)


class FileTier:
    """A content-addressed file store in a directory; several processes may share one root."""

    def __init__(self, root: Path, *, params: ChunkParams = DEFAULT_PARAMS, level: int = 3) -> None:
        if not 1 <= level <= 19:
            raise ValueError("zstandard level must be 1 to 19")
        self.root = root
        self.params = params
        self.level = level
        for folder in (root, root / "chunks", root / "tmp", root / "sessions"):
            folder.mkdir(parents=True, exist_ok=True)
        self._index = TierIndex(root / "tier.db", params)

    def put(self, name: str, stream: ByteSource) -> FileManifest:
        """Stores the stream's bytes under `name`; bounded memory whatever the size."""
        name = check_name(name)
        whole = hashlib.sha256()
        size = 0
        digests: list[str] = []
        stored: dict[str, int] = {}
        compressor = zstandard.ZstdCompressor(level=self.level)
        with self._session() as session, self._index.connect() as conn:
            for data in iter_chunks(stream, self.params):
                whole.update(data)
                size += len(data)
                digest = hashlib.sha256(data).hexdigest()
                digests.append(digest)
                if digest not in stored:
                    self._index.hold(conn, session, digest, len(data))
                    stored[digest] = self._write_chunk(session, len(stored), digest, data, compressor)
            manifest = FileManifest(name, size, whole.hexdigest(), digests, uuid.uuid4().hex)
            self._index.commit(conn, session, manifest, stored)
        return manifest

    def get(self, manifest: FileManifest, sink: ByteSink) -> None:
        """Writes the file to `sink`, checking every chunk and then the whole file against their SHA-256.

        On ChunkCorrupted or FileCorrupted the sink holds a partial file: the caller discards it.
        """
        whole = hashlib.sha256()
        size = 0
        decompressor = zstandard.ZstdDecompressor()
        for digest in manifest.chunks:
            data = self._read_chunk(manifest.name, check_digest(digest, "chunk digest"), decompressor)
            whole.update(data)
            size += len(data)
            sink.write(data)
        if size != manifest.size:
            raise FileCorrupted(manifest.name, f"has {size} bytes, not {manifest.size}")
        if whole.hexdigest() != manifest.sha256:
            raise FileCorrupted(manifest.name)

    def stats(self) -> TierStats:
        """Bytes of the live puts, bytes of the chunk files they and uncollected releases hold."""
        return self._index.stats()

    def release(self, manifest: FileManifest) -> None:
        """Drops this put's references (once, however often called); `collect` reclaims the space."""
        self._index.release(manifest.id)

    def is_live(self, manifest: FileManifest) -> bool:
        return self._index.is_live(manifest.id)

    def collect(self) -> int:
        """Deletes chunks nothing refers to and the leftovers of dead puts; returns the bytes reclaimed."""
        reclaimed = 0
        with self._index.connect() as conn, self._index.writing(conn):
            # Under the write lock no put can start holding a chunk while its file is being deleted.
            live_sessions = self._reap_dead_sessions()
            for session in self._index.pending_sessions(conn):
                if session not in live_sessions:
                    self._index.drop_pending(conn, session)
            for digest in self._index.unreferenced(conn):
                path = self._chunk_path(digest)
                with contextlib.suppress(FileNotFoundError):
                    reclaimed += path.stat().st_size
                    path.unlink()
                self._index.forget(conn, digest)
        return reclaimed

    def _chunk_path(self, digest: str) -> Path:
        return self.root / "chunks" / digest[:2] / digest[2:4] / f"{digest}.zst"

    def _write_chunk(
        self, session: str, seq: int, digest: str, data: bytes, compressor: zstandard.ZstdCompressor
    ) -> int:
        final = self._chunk_path(digest)
        with contextlib.suppress(FileNotFoundError):
            return final.stat().st_size  # already stored, by this or another archive
        _make_dirs(final.parent)
        temporary = self.root / "tmp" / f"{session}-{seq}.part"
        compressed = compressor.compress(data)
        with temporary.open("xb") as out:
            out.write(compressed)
            out.flush()
            os.fsync(out.fileno())
        # Two puts of one chunk may both get here: the content is the same, the last rename wins.
        os.replace(temporary, final)
        _fsync_dir(final.parent)
        return len(compressed)

    def _read_chunk(self, name: str, digest: str, decompressor: zstandard.ZstdDecompressor) -> bytes:
        try:
            raw = self._chunk_path(digest).read_bytes()
        except FileNotFoundError:
            raise ChunkCorrupted(name, digest, "is missing from the tier") from None
        try:
            content_size = zstandard.frame_content_size(raw)
            if not 0 <= content_size <= self.params.max_size:
                raise ChunkCorrupted(name, digest, "has a damaged frame header")
            data = decompressor.decompress(raw)
        except zstandard.ZstdError as error:
            raise ChunkCorrupted(name, digest, f"cannot be decompressed ({error})") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ChunkCorrupted(name, digest)
        return data

    @contextlib.contextmanager
    def _session(self) -> Iterator[str]:
        session = uuid.uuid4().hex
        sessions = self.root / "sessions"
        # Locked before it has its final name, so `collect` never finds it unlocked while alive.
        fd = os.open(sessions / f"{session}.new", os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(sessions / f"{session}.new", sessions / f"{session}.lock")
            try:
                yield session
            finally:
                self._index.drop_session(session)
                self._clear_session(session)
        finally:
            os.close(fd)

    def _reap_dead_sessions(self) -> set[str]:
        """Clears the files of puts that died (their lock is free); returns the sessions still alive."""
        alive: set[str] = set()
        for lock in (self.root / "sessions").iterdir():
            session = lock.name.split(".")[0]
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                alive.add(session)
                os.close(fd)
                continue
            try:
                self._clear_session(session)
            finally:
                os.close(fd)
        return alive

    def _clear_session(self, session: str) -> None:
        for leftover in (self.root / "tmp").glob(f"{session}-*.part"):
            leftover.unlink(missing_ok=True)
        for suffix in (".lock", ".new"):
            (self.root / "sessions" / f"{session}{suffix}").unlink(missing_ok=True)


def _make_dirs(folder: Path) -> None:
    if folder.is_dir():
        return
    _make_dirs(folder.parent)
    with contextlib.suppress(FileExistsError):
        folder.mkdir()
    _fsync_dir(folder.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
