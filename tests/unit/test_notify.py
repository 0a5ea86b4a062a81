"""The shared Notifier: waiters wake on in-process saves at once and on other processes' writes
at the next poll, and a wait with nothing new returns the head at its timeout."""

from __future__ import annotations

import asyncio
import threading
import time

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
