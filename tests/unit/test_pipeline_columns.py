"""What crosses the pipe from a reader process (projections/pipeline.py) comes back as it went in."""

from __future__ import annotations

import pickle
from functools import partial
from typing import TypeVar
from uuid import uuid4

import pytest
from eventsourcing.persistence import Notification

from projections.pipeline import columns, notifications_of, prepare

T = TypeVar("T")


def notification(position: int, originator: object = None) -> Notification:
    return Notification(
        originator_id=originator or uuid4(),  # type: ignore[arg-type]
        originator_version=position * 3,
        topic="stagekeeper:Configuration.Defined",
        state=b'{"name": "c", "machines": [{"name": "web1"}, {"name": "db1"}], "networks": [], "actor": "a"}',
        id=position,
    )


def crossed(value: T) -> T:
    """Through pickle, as through the pipe (this test's own bytes)."""
    loaded: T = pickle.loads(pickle.dumps(value))  # noqa: S301
    return loaded


def test_notifications_sent_as_columns_come_back_equal_field_by_field() -> None:
    sent = [notification(n) for n in range(1, 6)]
    received = notifications_of(crossed(columns(sent)))
    assert received == sent
    assert [vars(n) for n in received] == [vars(n) for n in sent]
    assert hash(received[0]) == hash(sent[0])


def test_notifications_whose_originator_is_not_a_uuid_are_sent_as_they_are() -> None:
    sent = [notification(1), notification(2, originator="not-a-uuid")]
    assert columns(sent) is sent
    assert notifications_of(crossed(columns(sent))) == sent


def test_sized_keys_cross_as_their_length_and_the_summary_still_reads_the_whole_state() -> None:
    sent = [notification(1)]
    [whole] = prepare(sent, None, None)
    [(kind, data, _, summary, _, _)] = prepare(sent, frozenset(("machines", "networks", "actor")), None, ("machines",))
    assert data == {"machines": [None, None], "networks": [], "actor": "a"}
    assert summary == whole[3] == "defined configuration 'c' with 2 machine(s) on 0 network(s)"
    assert kind == "Configuration.Defined"


def test_records_prepared_from_columns_equal_those_prepared_from_the_notifications() -> None:
    from projections.chain import GENESIS
    from projections.pipeline import prepare_columns

    states = [
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05.123456+00:00"},"name":"c",'
        b'"service_id":{"_type_":"uuid_hex","_data_":"231b09a37aa6476b9f4c76b13e62db51"},'
        b'"description":"","machines":[{"name":"web1"}],"networks":[],"actor":"a"}',
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:06+00:00"},"description":"d",'
        b'"machines":[],"networks":[{"name":"n"}],"changes":{"description":["","d"]},"actor":"b","reason":"r"}',
    ]
    topics = ["stagekeeper:Configuration.Defined", "stagekeeper:Configuration.Revised"]
    sent = [
        Notification(originator_id=uuid4(), originator_version=n + 1, topic=topics[n], state=states[n], id=10 + n)
        for n in range(2)
    ]
    keys = frozenset(("machines", "networks", "actor", "timestamp", "service_id", "name"))
    names: dict[bytes, str] = {}  # kept across batches, as the reader keeps it
    for chain in (None, GENESIS):
        for wanted, sized in ((None, ()), (keys, ("machines",)), (keys, ("machines", "networks", "name"))):
            expected = prepare(sent, wanted, chain, sized)
            assert prepare_columns(crossed(columns(sent)), wanted, chain, sized) == expected  # type: ignore[arg-type]
            got = prepare_columns(crossed(columns(sent)), wanted, chain, sized, names)  # type: ignore[arg-type]
            assert got == expected
            assert [list(record[1]) for record in got] == [list(record[1]) for record in expected]  # key order too
    assert names == {n.originator_id.bytes: str(n.originator_id) for n in sent}  # type: ignore[union-attr]
    # Two states of one layout, the second with a value of another type under a sized key.
    again = [
        Notification(originator_id=uuid4(), originator_version=1, topic=topics[0], state=state, id=20 + n)
        for n, state in enumerate((states[0], states[0].replace(b'"machines":[{"name":"web1"}]', b'"machines":3')))
    ]
    crossing = crossed(columns(again))
    assert isinstance(crossing, tuple)
    assert prepare_columns(crossing, keys, None, ("machines",)) == prepare(again, keys, None, ("machines",))
    # A state that is not an object fails both ways (the reader then sends the batch without records).
    scalar = [Notification(originator_id=uuid4(), originator_version=1, topic=topics[0], state=b'"abc"', id=30)]
    scalar_columns = crossed(columns(scalar))
    assert isinstance(scalar_columns, tuple)
    with pytest.raises(AttributeError):
        prepare(scalar, keys, None)
    with pytest.raises(AttributeError):
        prepare_columns(scalar_columns, keys, None)


def test_a_received_batch_makes_each_notification_when_asked_for_and_equal_to_the_one_sent() -> None:
    from projections.pipeline import Received, ids_of, states_of, topics_of

    sent = [notification(n) for n in range(1, 6)]
    received = Received(crossed(columns(sent)))  # type: ignore[arg-type]
    assert len(received) == 5
    assert received._made == [None] * 5
    assert received[-1] == sent[-1]
    assert received[1] == sent[1]
    assert received[-1] is received[4]  # made once
    assert sum(made is not None for made in received._made) == 2
    assert list(received[1:4]) == sent[1:4]
    assert list(received[::-2]) == sent[::-2]
    assert list(received) == sent
    assert [n.originator_id.is_safe for n in received] == [n.originator_id.is_safe for n in sent]  # type: ignore[union-attr]
    assert [vars(n) for n in received] == [vars(n) for n in sent]
    assert (ids_of(received), topics_of(received), list(states_of(received))) == (
        [n.id for n in sent],
        [n.topic for n in sent],
        [n.state for n in sent],
    )
    assert (ids_of(sent), topics_of(sent), list(states_of(sent))) == (
        ids_of(received),
        topics_of(received),
        list(states_of(received)),
    )


def test_records_sent_in_chunks_come_back_as_the_batch_they_were_made_from() -> None:
    from projections.pipeline import LOAD_CHUNK, chunked, unchunked
    from projections.raw import RawEvent

    for count in (0, 1, LOAD_CHUNK, LOAD_CHUNK + 1, 2 * LOAD_CHUNK + 5):
        sent = [notification(n) for n in range(1, count + 1)]
        records = prepare(sent, frozenset(("name", "actor")), None)
        pauses: list[None] = []
        notifications, parsed = unchunked(
            crossed(columns(sent)), crossed(chunked(records)), partial(pauses.append, None)
        )
        assert list(notifications) == sent
        assert parsed == [RawEvent(n, *r) for n, r in zip(sent, records, strict=True)]
        assert parsed is not None
        for event, n in zip(parsed, sent, strict=True):
            assert (event.position, event.version, event.topic) == (n.id, n.originator_version, n.topic)
            assert event.notification is notifications[n.id - 1]
        assert len(pauses) == -(-count // LOAD_CHUNK)  # one pause a chunk
        # A batch the reader could not parse crosses without records.
        received, none = unchunked(crossed(columns(sent)), None)
        assert (list(received), none) == (sent, None)
    # Notifications that cross as they are (an originator id not a UUID) get their records too.
    odd = [notification(1), notification(2, originator="not-a-uuid")]
    odd_records = prepare(odd, None, None)
    assert unchunked(odd, chunked(odd_records)) == (
        odd,
        [RawEvent(n, *r) for n, r in zip(odd, odd_records, strict=True)],
    )


def test_only_the_states_of_decoded_topics_cross_and_the_others_are_read_again_when_asked_for() -> None:
    from projections.pipeline import Received, nul_free_of, stated_only, states_of

    topics = ["stagekeeper:Service.Registered", "stagekeeper:Deployment.Moved", "stagekeeper:Configuration.Revised"]
    sent = [
        Notification(
            originator_id=uuid4(), originator_version=1, topic=topics[n % 3], state=f'{{"n": {n}}}'.encode(), id=n + 5
        )
        for n in range(7)
    ]
    sent_columns = columns(sent)
    assert isinstance(sent_columns, tuple)
    crossing = stated_only(
        sent_columns, (frozenset(["stagekeeper:Service.Registered"]), frozenset(["stagekeeper:Deployment."]))
    )
    assert crossing[4] == [n.state if n.topic != topics[2] else None for n in sent]

    loads: list[tuple[int, int]] = []

    def load(start: int, limit: int) -> list[Notification]:
        loads.append((start, limit))
        return sent

    received = Received(crossed(crossing), load, clean=False)
    assert received[0] == sent[0]  # crossed: no read
    assert received[1] == sent[1]
    assert loads == []
    assert nul_free_of(received) is False  # as the reader found it, not from the states
    assert received[2] == sent[2]  # did not cross: the batch is read again, once
    assert list(received) == sent
    assert list(states_of(received)) == [n.state for n in sent]
    assert loads == [(5, 7)]
    # Without the reader's word, from the states.
    assert nul_free_of(Received(crossed(columns(sent)))) is True  # type: ignore[arg-type]

    with pytest.raises(RuntimeError, match="no event store"):
        Received(crossed(crossing))[2]
    with pytest.raises(RuntimeError, match="another batch"):
        Received(crossed(crossing), lambda start, limit: sent[1:])[2]
