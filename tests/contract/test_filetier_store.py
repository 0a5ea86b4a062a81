"""The file tier on a directory: round trips, deduplication, corruption named, space reclaimed."""

from __future__ import annotations

import hashlib
import io
import random
import sqlite3
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from adapters.filetier import (
    ChunkCorrupted,
    ChunkParams,
    FileCorrupted,
    FileManifest,
    FileTier,
    TierCorrupted,
    TierMismatchError,
)
from tests.filetier_support import GeneratedStream, HashingSink, pseudo_random

MIB = 1024 * 1024


def text_like(size: int, seed: int) -> bytes:
    words = [b"vmware", b"guest", b"disk", b"sector", b"config", b"payroll", b"kernel", b"log", b"\x00" * 16]
    out = bytearray()
    rng = random.Random(seed)
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=512)) + b"\n"
    return bytes(out[:size])


def read_back(tier: FileTier, manifest: FileManifest) -> bytes:
    sink = io.BytesIO()
    tier.get(manifest, sink)
    return sink.getvalue()


def chunk_files(root: Path) -> list[Path]:
    return sorted((root / "chunks").rglob("*.zst"))


@pytest.fixture
def tier(tmp_path: Path) -> FileTier:
    return FileTier(tmp_path / "tier")


@pytest.mark.parametrize("size", [0, 1, 256 * 1024 - 1, 4 * MIB, 9 * MIB + 7])
def test_a_file_comes_back_byte_for_byte(tier: FileTier, size: int) -> None:
    data = pseudo_random(size, seed=size)
    manifest = tier.put("vm1/vm1-flat.vmdk", io.BytesIO(data))
    assert (manifest.size, manifest.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert read_back(tier, manifest) == data
    assert read_back(tier, FileManifest.from_json(manifest.to_json())) == data


def test_chunks_are_named_by_their_sha256_two_levels_deep(tier: FileTier) -> None:
    manifest = tier.put("vm1.vmx", io.BytesIO(b'displayName = "vm1"\n'))
    (digest,) = manifest.chunks
    path = tier.root / "chunks" / digest[:2] / digest[2:4] / f"{digest}.zst"
    assert hashlib.sha256(zstandard.ZstdDecompressor().decompress(path.read_bytes())).hexdigest() == digest


def test_compressible_files_are_stored_compressed(tier: FileTier) -> None:
    data = text_like(6 * MIB, seed=1)
    tier.put("vm1/vmware.log", io.BytesIO(data))
    stats = tier.stats()
    assert stats.logical_bytes == len(data)
    assert stats.stored_bytes < len(data) // 3
    assert stats.stored_bytes == sum(p.stat().st_size for p in chunk_files(tier.root))


def test_the_same_file_twice_is_stored_once(tier: FileTier) -> None:
    data = pseudo_random(6 * MIB, seed=2)
    first = tier.put("a/disk.vmdk", io.BytesIO(data))
    once = tier.stats()
    second = tier.put("b/disk.vmdk", io.BytesIO(data))
    twice = tier.stats()
    assert first.chunks == second.chunks
    assert first.id != second.id
    assert twice.logical_bytes == 2 * once.logical_bytes
    assert (twice.stored_bytes, twice.chunks) == (once.stored_bytes, once.chunks)


def test_two_disks_of_one_template_share_what_they_did_not_change(tier: FileTier) -> None:
    template = pseudo_random(12 * MIB, seed=3)
    changed = bytearray(template)
    changed[3 * MIB : 3 * MIB + 200_000] = pseudo_random(200_000, seed=4)
    tier.put("vm1/disk.vmdk", io.BytesIO(template))
    one = tier.stats().stored_bytes
    tier.put("vm2/disk.vmdk", io.BytesIO(bytes(changed[:5000]) + b"inserted" + bytes(changed[5000:])))
    assert tier.stats().stored_bytes < one * 1.35


def test_a_chunk_damaged_on_disk_fails_the_read_naming_the_file(tier: FileTier) -> None:
    data = pseudo_random(5 * MIB, seed=5)
    manifest = tier.put("vm2/vm2-flat.vmdk", io.BytesIO(data))
    victim = tier.root / "chunks" / manifest.chunks[1][:2] / manifest.chunks[1][2:4] / f"{manifest.chunks[1]}.zst"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    victim.write_bytes(bytes(raw))
    with pytest.raises(ChunkCorrupted, match=r"vm2/vm2-flat\.vmdk") as caught:
        tier.get(manifest, io.BytesIO())
    assert caught.value.chunk == manifest.chunks[1]
    assert caught.value.file_name == "vm2/vm2-flat.vmdk"


def test_a_chunk_replaced_by_other_valid_content_is_caught_by_its_hash(tier: FileTier) -> None:
    manifest = tier.put("vm3.nvram", io.BytesIO(b"nvram contents"))
    (digest,) = manifest.chunks
    victim = tier.root / "chunks" / digest[:2] / digest[2:4] / f"{digest}.zst"
    victim.write_bytes(zstandard.ZstdCompressor().compress(b"other contents"))
    with pytest.raises(ChunkCorrupted, match=r"'vm3.nvram': chunk [0-9a-f]{64} does not match its SHA-256"):
        tier.get(manifest, io.BytesIO())


def test_a_missing_chunk_fails_the_read_naming_the_file(tier: FileTier) -> None:
    manifest = tier.put("vm4.vmx", io.BytesIO(b"config"))
    for path in chunk_files(tier.root):
        path.unlink()
    with pytest.raises(TierCorrupted, match=r"'vm4\.vmx'.*missing"):
        tier.get(manifest, io.BytesIO())


def test_a_manifest_whose_chunks_do_not_make_the_file_is_refused(tier: FileTier) -> None:
    params = ChunkParams(min_size=1024, avg_size=4096, max_size=16384)
    small = FileTier(tier.root.parent / "small", params=params)
    manifest = small.put("vm5/disk.vmdk", io.BytesIO(pseudo_random(200_000, seed=6)))
    swapped = FileManifest(manifest.name, manifest.size, manifest.sha256, manifest.chunks[::-1], manifest.id)
    with pytest.raises(FileCorrupted, match=r"'vm5/disk\.vmdk' does not match its SHA-256"):
        small.get(swapped, io.BytesIO())
    shorter = FileManifest(manifest.name, manifest.size, manifest.sha256, manifest.chunks[1:], manifest.id)
    with pytest.raises(FileCorrupted, match="bytes, not 200000"):
        small.get(shorter, io.BytesIO())


def test_released_files_give_their_space_back_only_when_nothing_else_uses_it(tier: FileTier) -> None:
    base = pseudo_random(8 * MIB, seed=7)
    first = tier.put("a/disk.vmdk", io.BytesIO(base))
    second = tier.put("b/disk.vmdk", io.BytesIO(base + pseudo_random(MIB, seed=8)))
    sizes = {p.name.removesuffix(".zst"): p.stat().st_size for p in chunk_files(tier.root)}
    only_first = set(first.chunks) - set(second.chunks)
    assert 0 < len(only_first) < len(set(first.chunks))  # the tail of `first` was cut at its end
    before = tier.stats()
    tier.release(first)
    tier.release(first)  # a second release of the same put changes nothing
    assert not tier.is_live(first)
    assert tier.stats().logical_bytes == second.size
    assert tier.collect() == sum(sizes[d] for d in only_first)
    assert read_back(tier, second) == base + pseudo_random(MIB, seed=8)
    assert tier.collect() == 0
    tier.release(second)
    assert tier.collect() == before.stored_bytes - sum(sizes[d] for d in only_first)
    assert tier.stats().logical_bytes == tier.stats().stored_bytes == tier.stats().chunks == 0
    assert chunk_files(tier.root) == []


def test_a_put_whose_stream_fails_leaves_nothing_behind_after_collect(tier: FileTier) -> None:
    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = GeneratedStream(20 * MIB, seed=9)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            if self.inner.remaining < 8 * MIB:
                raise OSError("datastore went away")
            return self.inner.readinto(buffer)

    with pytest.raises(OSError, match="datastore went away"):
        tier.put("vm6/disk.vmdk", io.BufferedReader(Failing()))
    assert tier.stats().logical_bytes == 0
    assert chunk_files(tier.root)  # chunks written before the failure, referenced by nothing
    assert tier.collect() > 0
    assert chunk_files(tier.root) == []
    assert list((tier.root / "tmp").iterdir()) == list((tier.root / "sessions").iterdir()) == []


def test_a_put_redone_under_its_key_drops_the_first_puts_references(tier: FileTier) -> None:
    """A worker killed after its put committed but before it recorded the manifest: the next worker
    puts the same file again under the same key; the first put's references go with it."""
    data = pseudo_random(3 * MIB, seed=11)
    other = tier.put("b/disk.vmdk", io.BytesIO(data[: 2 * MIB]), key="archive-b/vm/disk.vmdk")
    lost = tier.put("a/disk.vmdk", io.BytesIO(data), key="archive-a/vm/disk.vmdk")
    redone = tier.put("a/disk.vmdk", io.BytesIO(data), key="archive-a/vm/disk.vmdk")
    assert not tier.is_live(lost)
    assert tier.is_live(redone)
    assert tier.is_live(other)  # another key is left alone
    assert tier.stats().logical_bytes == other.size + redone.size  # counted once
    assert tier.collect() == 0  # the chunks are the redone put's now
    assert read_back(tier, redone) == data
    tier.release(lost)  # the lost put's manifest, released by mistake: changes nothing
    assert read_back(tier, redone) == data
    tier.release(redone)
    tier.release(other)
    assert tier.collect() > 0
    assert tier.stats().logical_bytes == tier.stats().stored_bytes == tier.stats().chunks == 0
    assert chunk_files(tier.root) == []  # no reference left behind by the lost put


def test_release_key_drops_only_the_live_put_of_that_key(tier: FileTier) -> None:
    """A put committed but never recorded, whose redo failed: released by its key alone."""
    data = pseudo_random(2 * MIB, seed=12)
    other = tier.put("b/disk.vmdk", io.BytesIO(data), key="archive-b/vm/disk.vmdk")
    lost = tier.put("a/disk.vmdk", io.BytesIO(data), key="archive-a/vm/disk.vmdk")
    assert tier.release_key("archive-a/vm/disk.vmdk")
    assert not tier.is_live(lost)
    assert tier.is_live(other)
    assert not tier.release_key("archive-a/vm/disk.vmdk")  # once
    assert not tier.release_key("archive-c/vm/disk.vmdk")  # no such put
    assert read_back(tier, other) == data
    tier.release(other)
    assert tier.collect() > 0
    assert tier.stats().logical_bytes == tier.stats().chunks == 0


def test_a_tier_made_before_keys_gets_them(tmp_path: Path) -> None:
    root = tmp_path / "old"
    FileTier(root)
    with sqlite3.connect(root / "tier.db") as conn:  # the table as tiers made before keys have it
        conn.execute("DROP INDEX manifests_key")
        conn.execute("ALTER TABLE manifests DROP COLUMN key")
    tier = FileTier(root)
    first = tier.put("a", io.BytesIO(b"x" * 100), key="k")
    tier.put("a", io.BytesIO(b"x" * 100), key="k")
    assert not tier.is_live(first)


def test_a_tier_refuses_other_chunk_bounds(tmp_path: Path) -> None:
    FileTier(tmp_path / "t")
    with pytest.raises(TierMismatchError, match="chunk sizes"):
        FileTier(tmp_path / "t", params=ChunkParams(min_size=1024, avg_size=4096, max_size=16384))


def test_a_bad_name_is_refused(tier: FileTier) -> None:
    with pytest.raises(ValueError, match="file name"):
        tier.put("", io.BytesIO(b"x"))


def test_putting_and_getting_200_mib_stays_within_20_mib_of_memory(tier: FileTier) -> None:
    size = 200 * MIB
    tracemalloc.start()
    try:
        manifest = tier.put("big/disk.vmdk", io.BufferedReader(GeneratedStream(size, seed=10)))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sink = HashingSink()
        tier.get(manifest, sink)
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (sink.size, sink.hash.hexdigest()) == (size, manifest.sha256)
    assert put_peak < 20 * MIB, put_peak
    assert get_peak < 20 * MIB, get_peak
