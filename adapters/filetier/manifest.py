"""What the file tier hands back for a stored file, its figures, and its failures."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[0-9a-f]{32}")
MAX_NAME = 1024


def check_name(name: object) -> str:
    """A file name for messages and the catalogue: text, 1 to 1,024 characters, no control characters."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f"file name must be text of 1 to {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("file name must not hold control characters")
    return name


def check_digest(value: object, what: str) -> str:
    # Chunk digests become paths under the tier root: anything but 64 lowercase hex is refused.
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"{what} must be 64 lowercase hexadecimal digits")
    return value


@dataclass(frozen=True)
class FileManifest:
    """One stored file: its name, size and SHA-256, and the SHA-256 of its chunks in order.

    `id` names this put: the tier counts references per put, so releasing it twice releases once.
    """

    name: str
    size: int
    sha256: str
    chunks: list[str] = field(default_factory=list)
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "sha256": self.sha256, "chunks": list(self.chunks)}

    @classmethod
    def from_dict(cls, data: object) -> FileManifest:
        """A manifest read back from an event or a file, every field checked."""
        if not isinstance(data, dict):
            raise ValueError("manifest must be an object")
        size = data.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("manifest size must be a non-negative integer")
        chunks = data.get("chunks")
        if not isinstance(chunks, list):
            raise ValueError("manifest chunks must be a list")
        put_id = data.get("id")
        if not isinstance(put_id, str) or not _ID.fullmatch(put_id):
            raise ValueError("manifest id must be 32 lowercase hexadecimal digits")
        return cls(
            name=check_name(data.get("name")),
            size=size,
            sha256=check_digest(data.get("sha256"), "manifest sha256"),
            chunks=[check_digest(c, "chunk digest") for c in chunks],
            id=put_id,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> FileManifest:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class TierStats:
    """logical_bytes: the files' sizes summed over live puts; stored_bytes: the chunk files on disk."""

    logical_bytes: int
    stored_bytes: int
    chunks: int

    @property
    def saving_percent(self) -> float:
        if self.logical_bytes == 0:
            return 0.0
        return 100.0 * (1 - self.stored_bytes / self.logical_bytes)


class TierCorrupted(Exception):  # noqa: N818 (the name the archive code catches)
    """A stored file cannot be read back as it was put; the message names the file."""

    def __init__(self, file_name: str, message: str) -> None:
        super().__init__(message)
        self.file_name = file_name


class ChunkCorrupted(TierCorrupted):
    def __init__(self, file_name: str, chunk: str, problem: str = "does not match its SHA-256") -> None:
        super().__init__(file_name, f"file {file_name!r}: chunk {chunk} {problem}")
        self.chunk = chunk


class FileCorrupted(TierCorrupted):
    def __init__(self, file_name: str, problem: str = "does not match its SHA-256") -> None:
        super().__init__(file_name, f"file {file_name!r} {problem}")


class TierMismatchError(Exception):
    """The tier root was made with other chunk bounds; cutting differently would defeat deduplication."""
