"""Request ids: 32 hex digits laid out as a random version-4 UUID, unique, and not repeated by a
forked child (its generator is seeded again)."""

from __future__ import annotations

import os
import uuid

from api.observability import new_request_id


def test_a_request_id_reads_as_a_random_version_4_uuid() -> None:
    for _ in range(1000):
        text = new_request_id()
        assert len(text) == 32
        parsed = uuid.UUID(hex=text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == text


def test_request_ids_do_not_repeat() -> None:
    assert len({new_request_id() for _ in range(50_000)}) == 50_000


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    assert len(from_child) == 32
    assert from_child != new_request_id()
