"""Deterministic byte streams for the file tier's tests: any size, without holding it in memory."""

from __future__ import annotations

import hashlib
import io
import random


def pseudo_random(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


class GeneratedStream(io.RawIOBase):
    """`size` bytes cut from seeded random 1 MiB blocks; reads never return more than asked."""

    def __init__(self, size: int, seed: int = 0, block: int = 1024 * 1024) -> None:
        self.remaining = size
        self.random = random.Random(seed)
        self.block = block
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self.pending and self.remaining > 0:
            self.pending = self.random.randbytes(min(self.block, self.remaining))
            self.remaining -= len(self.pending)
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count


class HashingSink(io.RawIOBase):
    """A write-only sink keeping only the SHA-256 and size of what it got."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        return len(data)
