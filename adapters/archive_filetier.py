"""The file tier (adapters/filetier) behind the archive process's FileTierStore port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.filetier import FileManifest, FileTier, TierCorrupted
from domain.archive_ports import ArchiveFileCorruptedError, ByteSink, ByteSource


class FileTierAdapter:
    def __init__(self, root: Path) -> None:
        self.tier = FileTier(root)

    def put(self, name: str, source: ByteSource, key: str | None = None) -> dict[str, Any]:
        return self.tier.put(name, source, key).to_dict()

    def get(self, manifest: dict[str, Any], sink: ByteSink) -> None:
        try:
            self.tier.get(FileManifest.from_dict(manifest), sink)
        except TierCorrupted as corrupted:
            raise ArchiveFileCorruptedError(str(corrupted)) from corrupted

    def release(self, manifest: dict[str, Any]) -> None:
        self.tier.release(FileManifest.from_dict(manifest))

    def release_key(self, key: str) -> None:
        self.tier.release_key(key)

    def stats(self) -> tuple[int, int]:
        stats = self.tier.stats()
        return stats.logical_bytes, stats.stored_bytes
