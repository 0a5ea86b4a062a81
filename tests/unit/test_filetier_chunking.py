"""Content-defined chunking: cuts depend on content only, so an insertion moves few of them."""

from __future__ import annotations

import io

import pytest

from adapters.filetier.chunking import (
    DEFAULT_PARAMS,
    ChunkParams,
    cut_point,
    gear_hash_reference,
    gear_hashes,
    gear_table,
    iter_chunks,
)
from adapters.filetier.manifest import FileManifest
from tests.filetier_support import pseudo_random

MIB = 1024 * 1024


def chunks_of(data: bytes, params: ChunkParams = DEFAULT_PARAMS) -> list[bytes]:
    return list(iter_chunks(io.BytesIO(data), params))


def shared_ends(before: list[bytes], after: list[bytes]) -> int:
    """How many chunks the two lists share at their start plus at their end."""
    prefix = 0
    while prefix < min(len(before), len(after)) and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(before), len(after)) - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    return prefix + suffix


def test_the_vectorised_gear_hash_is_the_byte_at_a_time_gear_hash() -> None:
    data = pseudo_random(400, seed=1)
    hashes = gear_hashes(data)
    assert len(hashes) == 400 - 63
    for start in (0, 1, 2, 100, 336):
        assert int(hashes[start]) == gear_hash_reference(data[start : start + 64])


def test_chunks_rebuild_the_input_and_respect_the_bounds() -> None:
    data = pseudo_random(20 * MIB, seed=2)
    chunks = chunks_of(data)
    assert b"".join(chunks) == data
    assert all(DEFAULT_PARAMS.min_size <= len(c) <= DEFAULT_PARAMS.max_size for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= DEFAULT_PARAMS.max_size
    mean = len(data) / len(chunks)
    assert 0.7 * MIB < mean < 1.4 * MIB


def test_an_insertion_changes_only_the_chunks_around_it() -> None:
    data = pseudo_random(16 * MIB, seed=3)
    before = chunks_of(data)
    for offset, inserted in ((5 * MIB + 12345, b"x" * 37), (11 * MIB, pseudo_random(70_000, seed=4))):
        after = chunks_of(data[:offset] + inserted + data[offset:])
        assert shared_ends(before, after) >= len(before) - 2
        assert len(before) > 8


def test_a_deletion_changes_only_the_chunks_around_it() -> None:
    data = pseudo_random(16 * MIB, seed=5)
    before = chunks_of(data)
    after = chunks_of(data[: 7 * MIB] + data[7 * MIB + 4096 :])
    assert shared_ends(before, after) >= len(before) - 2


def test_fixed_size_blocks_would_shift_but_content_defined_chunks_do_not() -> None:
    # The reason for the rolling hash: with fixed 1 MiB blocks one inserted byte changes every later block.
    data = pseudo_random(8 * MIB, seed=6)
    shifted = data[:100] + b"!" + data[100:]
    fixed_before = [data[i : i + MIB] for i in range(0, len(data), MIB)]
    fixed_after = [shifted[i : i + MIB] for i in range(0, len(shifted), MIB)]
    assert set(fixed_before) & set(fixed_after) == set()
    assert len(set(chunks_of(data)) & set(chunks_of(shifted))) >= len(chunks_of(data)) - 1


def test_data_without_cut_points_is_cut_at_the_maximum() -> None:
    zeros = bytes(9 * MIB)
    assert [len(c) for c in chunks_of(zeros)] == [4 * MIB, 4 * MIB, 1 * MIB]


def test_a_short_tail_is_one_chunk() -> None:
    assert cut_point(b"abc") == 3
    assert chunks_of(b"") == []
    assert chunks_of(b"tiny") == [b"tiny"]


def test_small_bounds_cut_small_chunks() -> None:
    params = ChunkParams(min_size=1024, avg_size=4096, max_size=16384)
    chunks = chunks_of(pseudo_random(MIB, seed=7), params)
    assert all(1024 <= len(c) <= 16384 for c in chunks[:-1])
    assert 2500 < MIB / len(chunks) < 5500


@pytest.mark.parametrize(("low", "avg", "high"), [(10, 4096, 8192), (4096, 4096, 8192), (1024, 8192, 4096)])
def test_chunk_bounds_out_of_order_are_refused(low: int, avg: int, high: int) -> None:
    with pytest.raises(ValueError, match="chunk sizes"):
        ChunkParams(min_size=low, avg_size=avg, max_size=high)


def test_a_manifest_survives_json() -> None:
    manifest = FileManifest("vm1/disk.vmdk", 5, "a" * 64, ["b" * 64, "c" * 64], "d" * 32)
    assert FileManifest.from_json(manifest.to_json()) == manifest
    assert FileManifest.from_dict(manifest.to_dict()) == manifest


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("chunks", ["../../../etc/passwd"], "chunk digest"),
        ("chunks", ["B" * 64], "chunk digest"),
        ("sha256", "short", "manifest sha256"),
        ("size", -1, "size"),
        ("size", True, "size"),
        ("name", "", "file name"),
        ("name", "a\nb", "control"),
        ("id", "../x", "manifest id"),
    ],
)
def test_a_manifest_with_a_bad_field_is_refused(field: str, value: object, message: str) -> None:
    data = FileManifest("vm1/disk.vmdk", 5, "a" * 64, ["b" * 64], "d" * 32).to_dict()
    data[field] = value
    with pytest.raises(ValueError, match=message):
        FileManifest.from_dict(data)


def test_the_gear_table_is_pinned() -> None:
    # Changing the table re-cuts every file and ends deduplication against older archives.
    assert int(gear_table()[0]) == 15752850088325326502
    assert int(gear_table()[255]) == 7477296104223811230
    assert gear_hash_reference(bytes(range(64))) == 15750274640045716924
