"""Content-defined chunking: a gear rolling hash (as in FastCDC) picks the cut points.

A cut depends only on the 64 bytes before it, so inserting or removing bytes moves the cuts near
the change and leaves every later chunk as it was: two archives of one disk share their chunks.
The hash of a whole block is computed with numpy (six shift-and-add doublings instead of one step
per byte), and the first `min_size` bytes of every chunk are never hashed at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

WINDOW = 64  # bytes a gear hash of 64 bits sees: older bytes are shifted out
_MASK64 = (1 << 64) - 1
_SCAN = 64 * 1024  # cut candidates hashed per numpy pass
_READ = 1024 * 1024


class ByteSource(Protocol):
    """What put reads from: a binary file, a socket's file, a datastore download."""

    def read(self, size: int = -1, /) -> bytes | None: ...


class ByteSink(Protocol):
    """What get writes to."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class ChunkParams:
    """Chunk size bounds. A tier keeps the ones it was made with: other bounds cut other chunks."""

    min_size: int = 256 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if not WINDOW <= self.min_size < self.avg_size < self.max_size <= 64 * 1024 * 1024:
            raise ValueError("chunk sizes must satisfy 64 <= min < avg < max <= 64 MiB")

    @property
    def threshold(self) -> int:
        """A position past `min_size` is a cut when its hash is below this: once per (avg - min) bytes."""
        return (1 << 64) // (self.avg_size - self.min_size)


DEFAULT_PARAMS = ChunkParams()


@cache
def gear_table() -> npt.NDArray[np.uint64]:
    """256 pseudo-random 64-bit values, derived from fixed text: they must never change."""
    values = [int.from_bytes(hashlib.sha256(b"stagekeeper-gear-%d" % i).digest()[:8], "little") for i in range(256)]
    return np.array(values, dtype=np.uint64)


def gear_hashes(window_and_block: bytes | memoryview) -> npt.NDArray[np.uint64]:
    """Gear hash at the end of every 64-byte window: element j covers bytes [j, j + 64)."""
    values = gear_table()[np.frombuffer(window_and_block, dtype=np.uint8)]
    shift = 1
    while shift < WINDOW:
        # values[j] held the hash of `shift` bytes starting at j; now it holds 2 * shift bytes.
        values = values[shift:] + (values[:-shift] << np.uint64(shift))
        shift *= 2
    return values


def gear_hash_reference(window: bytes) -> int:
    """The textbook byte-at-a-time gear hash (h = (h << 1) + G[b]); tests compare with it."""
    table = [int(v) for v in gear_table()]
    h = 0
    for b in window:
        h = ((h << 1) + table[b]) & _MASK64
    return h


def cut_point(data: bytes | bytearray | memoryview, params: ChunkParams = DEFAULT_PARAMS) -> int:
    """Length of the first chunk of `data`: the first hashed cut in [min, max], else max (or all)."""
    view = memoryview(data)
    limit = min(len(view), params.max_size)
    if limit <= params.min_size:
        return limit
    threshold = np.uint64(params.threshold)
    low = params.min_size
    while low <= limit:
        high = min(limit, low + _SCAN - 1)
        # The chunk lengths low..high end at bytes low-1..high-1; each needs the 64 bytes before it.
        hashes = gear_hashes(view[low - WINDOW : high])
        hits = hashes < threshold
        first = int(hits.argmax())
        if hits[first]:
            return low + first
        low = high + 1
    return limit


def iter_chunks(stream: ByteSource, params: ChunkParams = DEFAULT_PARAMS) -> Iterator[bytes]:
    """The stream's content cut into chunks, holding at most max_size + 1 MiB of it at a time."""
    buffer = bytearray()
    ended = False
    while True:
        while not ended and len(buffer) < params.max_size:
            block = stream.read(_READ)
            if block:
                buffer += block
            else:
                ended = True
        if not buffer:
            return
        length = cut_point(buffer, params)
        yield bytes(buffer[:length])
        del buffer[:length]
