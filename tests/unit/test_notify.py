"""The shared Notifier: waiters wake on in-process saves at once and on other processes' writes
at the next poll, and a wait with nothing new returns the head at its timeout. A watch of one
aggregate wakes for this process's writes to that aggregate only, and for other processes'
writes (whose aggregates are unknown) at most once per poll."""

from __future__ import annotations

import asyncio
import threading
import time
from uuid import UUID, uuid4

from api.notify import Notifier


def test_waiters_wake_on_notify_from_another_thread_and_on_the_polled_head() -> None:
    head = [0]
    heads_read = [0]

    def read_head() -> int:
        heads_read[0] += 1
        return head[0]

    async def scenario() -> None:
        notifier = Notifier(read_head, poll_seconds=0.05)
        await notifier.start()
        try:
            started = time.monotonic()
            assert await notifier.wait(0, 0.2) == 0
            assert time.monotonic() - started >= 0.19
            waiters = [asyncio.create_task(notifier.wait(0, 5)) for _ in range(50)]
            await asyncio.sleep(0.01)
            threading.Thread(target=notifier.notify, args=(7,)).start()
            started = time.monotonic()
            assert await asyncio.gather(*waiters) == [7] * 50
            assert time.monotonic() - started < 1
            head[0] = 9  # another process wrote: found by the poll
            assert await notifier.wait(7, 5) == 9
            assert notifier.position == 9
        finally:
            await notifier.stop()
        polls = heads_read[0]
        await asyncio.sleep(0.2)
        assert heads_read[0] == polls, "no polling after stop"

    asyncio.run(scenario())


def test_a_notifier_used_without_its_lifespan_still_sees_the_head() -> None:
    head = [3]
    notifier = Notifier(lambda: head[0], poll_seconds=0.02)
    assert asyncio.run(notifier.wait(2, 1)) == 3
    assert asyncio.run(notifier.wait(3, 0.1)) == 3


def test_a_watch_wakes_only_for_writes_to_its_own_aggregate() -> None:
    head = [0]
    watched, other = uuid4(), uuid4()

    async def scenario() -> None:
        notifier = Notifier(lambda: head[0], poll_seconds=0.02)
        await notifier.start()
        try:
            with notifier.watch(watched):
                seen = notifier.mark(watched)
                waiters = [asyncio.create_task(notifier.wait_for(watched, seen, 0.5)) for _ in range(50)]
                await asyncio.sleep(0.01)
                for position in range(1, 21):
                    # This process's own saves, elsewhere: announced, then seen by the poll too.
                    head[0] = position
                    threading.Thread(target=notifier.notify, args=(position, [other], [position])).start()
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.1)  # several polls judge those positions
                assert not any(w.done() for w in waiters), "woken by writes to another aggregate"
                assert notifier.position == 20, "the board still sees every write"
                started = time.monotonic()
                head[0] = 21
                threading.Thread(target=notifier.notify, args=(21, [watched, other], [21])).start()
                assert await asyncio.gather(*waiters) == [21] * 50
                assert time.monotonic() - started < 0.2
                # A write landing between the mark and the wait makes the wait return at once.
                seen = notifier.mark(watched)
                head[0] = 22
                notifier.notify(22, [watched], [22])
                await asyncio.sleep(0.01)
                assert await notifier.wait_for(watched, seen, 5) == 22
        finally:
            await notifier.stop()

    asyncio.run(scenario())


def test_another_process_write_wakes_every_watch_at_most_once_per_poll() -> None:
    head = [5]
    watched = [uuid4() for _ in range(10)]
    poll = 0.05

    async def follow(originator_id: UUID, until: float) -> int:
        """Wake and look again as a stream does; returns how many times it woke."""
        wakes = 0
        with notifier.watch(originator_id):
            seen = notifier.mark(originator_id)
            while (remaining := until - time.monotonic()) > 0:
                mark = await notifier.wait_for(originator_id, seen, remaining)
                if mark > seen:
                    wakes += 1
                    seen = mark
        return wakes

    async def another_process_writes(until: float) -> None:
        while time.monotonic() < until:
            head[0] += 1  # no notify: only the poll finds it
            await asyncio.sleep(0.002)

    notifier = Notifier(lambda: head[0], poll_seconds=poll)

    async def scenario() -> None:
        await notifier.start()
        try:
            started = time.monotonic()
            until = started + 0.5
            writer = asyncio.create_task(another_process_writes(until))
            wakes = await asyncio.gather(*(follow(i, until) for i in watched))
            await writer
            polls = (time.monotonic() - started) / poll
            assert all(1 <= n <= polls + 1 for n in wakes), (wakes, polls)
            # And it is seen within two polls.
            with notifier.watch(watched[0]):
                seen = notifier.mark(watched[0])
                head[0] += 1
                started = time.monotonic()
                assert await notifier.wait_for(watched[0], seen, 5) > seen
                assert time.monotonic() - started < 3 * poll + 0.05
        finally:
            await notifier.stop()

    asyncio.run(scenario())


def test_a_late_announcement_of_this_process_write_is_not_taken_for_another_process() -> None:
    head = [0]
    watched, other = uuid4(), uuid4()

    async def scenario() -> None:
        notifier = Notifier(lambda: head[0], poll_seconds=0.02)
        await notifier.start()
        try:
            with notifier.watch(watched):
                seen = notifier.mark(watched)
                waiter = asyncio.create_task(notifier.wait_for(watched, seen, 0.3))
                head[0] = 2  # saved (positions 1 and 2), polled before the save is announced
                assert await notifier.wait(0, 1) == 2
                notifier.notify(2, [other], [1, 2])
                assert await waiter == seen, "a write of this process to another aggregate woke the watch"
                # A position nobody announced among this process's own: another process wrote.
                head[0] = 5
                notifier.notify(3, [other], [3])
                notifier.notify(5, [other], [5])
                assert await notifier.wait_for(watched, seen, 1) == 5
        finally:
            await notifier.stop()

    asyncio.run(scenario())


def test_a_watch_without_the_lifespan_follows_the_head() -> None:
    head = [3]
    watched = uuid4()
    notifier = Notifier(lambda: head[0], poll_seconds=0.02)

    async def scenario() -> None:
        with notifier.watch(watched):
            assert notifier.mark(watched) == 0
            assert await notifier.wait_for(watched, 0, 1) == 3
            assert await notifier.wait_for(watched, 3, 0.1) == 3

    asyncio.run(scenario())
