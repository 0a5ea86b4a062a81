"""`serve --processes N`: the parent accepts every connection and hands it to the API process that
holds the fewest open connections; each API process serves what it is handed.

With a listening socket per process in one SO_REUSEPORT group the kernel picked a process by a
hash of the connection's addresses: 8 keep-alive clients were split 4/4 only about a quarter of
the time, and 5/3 or 6/2 left one process at its interpreter's limit while the other idled (issue
15's throughput bench: 620-639 commands/s at 4/4, 536-551 at 5/3). With one shared socket, the
process that happened to be idle took every connection of a burst (8/0). Here the parent, which
did nothing but wait before, accepts; each API process tells it, one byte a connection, when a
connection it was handed has closed, so the parent knows how many each one holds.

The parent sends a connection's descriptor over a Unix socket pair (SCM_RIGHTS) and closes its own
copy: from then on the connection is the API process's alone, served by the same uvicorn protocol
as one it accepted itself. A connection costs the parent one accept and one send; a request costs
it nothing.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn

log = logging.getLogger("stagekeeper")

# Sent by an API process once it serves, and for each connection it was handed that has closed;
# the byte sent along with each handed descriptor.
READY = b"+"
CLOSED = b"-"
HANDED = b"c"
# Descriptors received at most in one message (the parent sends one a message).
_MAX_FDS = 16


class Dispatcher:
    """Accepts on `listener` and hands each connection to the channel whose process holds the
    fewest; ties go round, so a burst is spread evenly. Nothing is accepted before every process
    has said it serves: a connection handed to a process still starting would wait there, and one
    its client gave up on meanwhile would count as open until that process got round to it."""

    def __init__(self, listener: socket.socket, channels: Sequence[socket.socket]) -> None:
        self.listener = listener
        self.channels = list(channels)
        self.open = [0] * len(self.channels)  # connections handed to each process, not yet closed
        self.handed = [0] * len(self.channels)  # ever handed (diagnostics, tests)
        self._next = 0
        self._alive = [True] * len(self.channels)
        self.ready = [False] * len(self.channels)

    def choose(self, skip: frozenset[int] = frozenset()) -> int | None:
        """The process to hand the next connection to (None: no process can take one)."""
        best: int | None = None
        count = len(self.channels)
        for step in range(count):
            index = (self._next + step) % count
            if (
                self._alive[index]
                and self.ready[index]
                and index not in skip
                and (best is None or self.open[index] < self.open[best])
            ):
                best = index
        if best is not None:
            self._next = (best + 1) % count
        return best

    def run(self, stop: Callable[[], bool], tick: Callable[[], bool] | None = None, interval: float = 0.5) -> None:
        """Serve until `stop()` is true or `tick()` (called every `interval` seconds) returns False."""
        self.listener.setblocking(False)
        accepting = False
        with selectors.DefaultSelector() as selector:
            for index, channel in enumerate(self.channels):
                channel.setblocking(False)
                selector.register(channel, selectors.EVENT_READ, index)
            while not stop():
                if not accepting and all(self.ready):
                    selector.register(self.listener, selectors.EVENT_READ, None)
                    accepting = True
                events = selector.select(interval)
                # Reports first: a client that closes its connections and opens new ones at once
                # finds them counted out before its new ones are handed.
                for key, _ in events:
                    if key.data is not None:
                        self.report(key.data, selector)
                if any(key.data is None for key, _ in events):
                    self._accept()
                if tick is not None and not tick():
                    return

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. EMFILE: the connection waits in the backlog
                log.warning("could not accept a connection: %s", error)
                return
            try:
                self.hand(connection)
            finally:
                connection.close()  # the API process holds its own copy now

    def hand(self, connection: socket.socket) -> int | None:
        """Send `connection` to a process; which one (None when none could take it: the client sees
        it close)."""
        skip: set[int] = set()
        while True:
            index = self.choose(frozenset(skip))
            if index is None:
                return None
            try:
                socket.send_fds(self.channels[index], [HANDED], [connection.fileno()])
            except (BlockingIOError, InterruptedError):
                skip.add(index)  # that process has not read its channel for long: another one
                continue
            except OSError:
                self._alive[index] = False
                continue
            self.open[index] += 1
            self.handed[index] += 1
            return index

    def report(self, index: int, selector: selectors.BaseSelector) -> None:
        """Read what process `index` said: it serves, connections closed, or (EOF) it is gone."""
        try:
            data = self.channels[index].recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            # The process is gone (its exit is seen and acted on by the caller's tick).
            self._alive[index] = False
            selector.unregister(self.channels[index])
            return
        if READY in data:
            self.ready[index] = True
        self.open[index] = max(0, self.open[index] - data.count(CLOSED))


class HandedServer(uvicorn.Server):
    """A uvicorn server without a listening socket of its own: it serves the connections the parent
    hands it over `channel`, and reports each one's end on it."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._unsent = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        if not self.started:
            return
        self._loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        self._loop.add_reader(self.channel.fileno(), self._receive)
        self.channel.send(READY)  # one byte into an empty buffer: does not block
        log.info("API process serving the connections handed to it")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.channel.fileno())
        await super().shutdown(sockets=sockets)

    def _receive(self) -> None:
        assert self._loop is not None
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.channel, 64, _MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message and not fds:
                # The parent is gone: serve what is open, take nothing more, and stop.
                self._loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                self._serve_handed(socket.socket(fileno=fd))

    def _serve_handed(self, connection: socket.socket) -> None:
        assert self._loop is not None
        connection.setblocking(False)
        made: list[Any] = []

        def protocol() -> asyncio.Protocol:
            instance = counted(self.config.http_protocol_class)(
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state, _loop=self._loop
            )
            instance.sk_handed_by = self
            made.append(instance)
            return instance  # type: ignore[no-any-return]

        def done(task: asyncio.Task[Any]) -> None:
            error = None if task.cancelled() else task.exception()
            if task.cancelled() or error is not None:
                if error is not None:
                    log.warning("could not serve a handed connection: %s", error)
                if not made or not getattr(made[0], "sk_made", False):
                    connection.close()
                    self.closed()  # connection_lost will not report it

        ssl = self.config.ssl
        task = self._loop.create_task(self._loop.connect_accepted_socket(protocol, connection, ssl=ssl))
        task.add_done_callback(done)

    def closed(self) -> None:
        """Tell the parent a handed connection has closed (later, if the channel is full now)."""
        with self._lock:
            self._unsent += 1
            try:
                sent = self.channel.send(CLOSED * self._unsent)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._unsent = 0  # the parent is gone
                return
            self._unsent -= sent


_classes: dict[type[Any], type[Any]] = {}


def counted(base: type[Any]) -> type[Any]:
    """The HTTP protocol class `base`, reporting its connection's end to the HandedServer set as
    `sk_handed_by` on each instance."""
    found = _classes.get(base)
    if found is None:

        def connection_made(self: Any, transport: Any) -> None:
            self.sk_made = True
            base.connection_made(self, transport)

        def connection_lost(self: Any, exc: Exception | None) -> None:
            try:
                base.connection_lost(self, exc)
            finally:
                self.sk_handed_by.closed()

        found = _classes[base] = type(
            f"Counted{base.__name__}", (base,), {"connection_made": connection_made, "connection_lost": connection_lost}
        )
    return found
