"""Screenshots shared between the viewers of one VM's console."""

from __future__ import annotations

import threading
import time

from api.ui.consoles import ScreenshotCache


class Camera:
    """Counts the pictures taken; each is slow, like CreateScreenshot_Task."""

    def __init__(self) -> None:
        self.taken = 0

    def take(self) -> bytes:
        self.taken += 1
        time.sleep(0.05)
        return b"png-%d" % self.taken


def test_viewers_within_the_freshness_window_share_one_picture() -> None:
    now = [100.0]
    cache, camera = ScreenshotCache(seconds=4, clock=lambda: now[0]), Camera()
    assert cache.get("vm-1", camera.take) == b"png-1"
    now[0] += 3.9
    assert cache.get("vm-1", camera.take) == b"png-1"
    assert cache.get("vm-2", camera.take) == b"png-2", "another VM has its own picture"
    now[0] += 0.2
    assert cache.get("vm-1", camera.take) == b"png-3", "an old picture is taken again"


def test_viewers_asking_at_once_wait_for_the_one_picture_being_taken() -> None:
    cache, camera = ScreenshotCache(seconds=4), Camera()
    seen: list[bytes] = []
    threads = [threading.Thread(target=lambda: seen.append(cache.get("vm-1", camera.take))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert camera.taken == 1
    assert seen == [b"png-1"] * 8
