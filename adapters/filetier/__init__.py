"""The file tier: the cold tier of archives, compressed and deduplicated by content."""

from adapters.filetier.chunking import DEFAULT_PARAMS, ChunkParams
from adapters.filetier.manifest import (
    ChunkCorrupted,
    FileCorrupted,
    FileManifest,
    TierCorrupted,
    TierMismatchError,
    TierStats,
)
from adapters.filetier.store import FileTier

__all__ = [
    "DEFAULT_PARAMS",
    "ChunkCorrupted",
    "ChunkParams",
    "FileCorrupted",
    "FileManifest",
    "FileTier",
    "TierCorrupted",
    "TierMismatchError",
    "TierStats",
]
