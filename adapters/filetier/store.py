"""FileTier: archived VM files kept compressed (zstandard) and deduplicated by content.

Layout of the tier root:
    chunks/ab/cd/<sha256>.zst   one zstandard frame per chunk, named by the SHA-256 of its content
    tier.db                     SQLite: live manifests and each chunk's reference count
    collect.lock                flock: shared by every running put, exclusive while `collect` runs
    sessions/<id>.chunks        a running put's journal: the chunk files it created, fsync'd before
                                each is renamed into chunks/ (what `collect` removes if the put dies)
    tmp/<id>-<n>.part           a chunk being written; renamed into chunks/ only complete and fsync'd

Puts never wait for each other: two puts of one chunk both write it and the last rename wins (the
content is the same). A put commits its manifest and references in one SQLite transaction at its
end, so it costs one transaction whatever its size. `collect` takes the lock exclusively, so no put
is between "the chunk is on disk, I will use it" and its commit while chunks are deleted.
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

    def put(self, name: str, stream: ByteSource, key: str | None = None) -> FileManifest:
        """Stores the stream's bytes under `name`; bounded memory whatever the size. A `key` (what the
        caller stores, e.g. one file of one archive) replaces the live put of the same key when this
        one commits: a put redone after its caller died unrecorded leaves no references behind."""
        name = check_name(name)
        whole = hashlib.sha256()
        size = 0
        digests: list[str] = []
        sizes: dict[str, tuple[int, int]] = {}
        compressor = zstandard.ZstdCompressor(level=self.level)
        with self._session() as journal:
            folders: set[Path] = set()
            for data in iter_chunks(stream, self.params):
                whole.update(data)
                size += len(data)
                digest = hashlib.sha256(data).hexdigest()
                digests.append(digest)
                if digest not in sizes:
                    sizes[digest] = (len(data), self._store_chunk(journal, digest, data, compressor, folders))
            for folder in folders:
                _fsync_dir(folder)  # the renames are durable before any manifest refers to them
            manifest = FileManifest(name, size, whole.hexdigest(), digests, uuid.uuid4().hex)
            self._index.commit(manifest, sizes, None if key is None else check_name(key))
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

    def release_key(self, key: str) -> bool:
        """Drops the live put of `key` (one committed by a caller that died before recording it);
        False when there is none."""
        return self._index.release_key(check_name(key))

    def is_live(self, manifest: FileManifest) -> bool:
        return self._index.is_live(manifest.id)

    def collect(self) -> int:
        """Deletes chunks nothing refers to and the leftovers of dead puts; returns the bytes reclaimed.

        Waits for running puts to finish, and puts wait for it.
        """
        reclaimed = 0
        with _locked(self.root / "collect.lock", fcntl.LOCK_EX), self._index.connect() as conn:
            with self._index.writing(conn):
                for digest in self._index.unreferenced(conn):
                    reclaimed += _unlink(self._chunk_path(digest))
                    self._index.forget(conn, digest)
            # No put runs now: every journal left is a dead put's, every temporary file too.
            for journal in (self.root / "sessions").iterdir():
                for digest in _journal_digests(journal):
                    if not self._index.referenced(conn, digest):
                        reclaimed += _unlink(self._chunk_path(digest))
                journal.unlink()
            for leftover in (self.root / "tmp").iterdir():
                leftover.unlink()
        return reclaimed

    def _chunk_path(self, digest: str) -> Path:
        return self.root / "chunks" / digest[:2] / digest[2:4] / f"{digest}.zst"

    def _store_chunk(
        self,
        journal: _Journal,
        digest: str,
        data: bytes,
        compressor: zstandard.ZstdCompressor,
        folders: set[Path],
    ) -> int:
        """The chunk's stored size, writing it unless it is already there (from any put)."""
        final = self._chunk_path(digest)
        with contextlib.suppress(FileNotFoundError):
            return final.stat().st_size  # collect cannot run while this put does: it stays
        _make_dirs(final.parent)
        temporary = self.root / "tmp" / f"{journal.session}-{journal.count}.part"
        compressed = compressor.compress(data)
        with temporary.open("xb") as out:
            out.write(compressed)
            out.flush()
            os.fsync(out.fileno())
        journal.record(digest)
        # Two puts of one chunk may both get here: the content is the same, the last rename wins.
        os.replace(temporary, final)
        folders.add(final.parent)
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
    def _session(self) -> Iterator[_Journal]:
        with _locked(self.root / "collect.lock", fcntl.LOCK_SH):
            journal = _Journal(self.root / "sessions")
            try:
                yield journal
            finally:
                journal.file.close()
            # Committed: its chunks are referenced now. A put that failed keeps its journal for `collect`.
            journal.path.unlink()


class _Journal:
    """The chunk files a put created, each fsync'd here before the chunk gets its name."""

    def __init__(self, folder: Path) -> None:
        self.session = uuid.uuid4().hex
        self.path = folder / f"{self.session}.chunks"
        self.file = self.path.open("x")
        _fsync_dir(folder)
        self.count = 0

    def record(self, digest: str) -> None:
        self.file.write(digest + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.count += 1


def _journal_digests(journal: Path) -> list[str]:
    digests = []
    for line in journal.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line cut short by a crash names no chunk
            digests.append(check_digest(line, "journal line"))
    return digests


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def _unlink(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


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
