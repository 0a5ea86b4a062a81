"""`serve --processes N`: the parent hands each connection to the API process holding the fewest."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from api.handoff import CLOSED, READY, Dispatcher, HandedServer


class _Selector:
    def unregister(self, _: object) -> None:
        pass


SELECTOR: Any = _Selector()


def _pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    return [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(count)]


def _ready(dispatcher: Dispatcher, pairs: list[tuple[socket.socket, socket.socket]]) -> Dispatcher:
    for index, (_, theirs) in enumerate(pairs):
        theirs.send(READY)
        dispatcher.report(index, SELECTOR)
    return dispatcher


def _connection() -> tuple[socket.socket, socket.socket]:
    """(client end, accepted end) of a loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    return client, accepted


def _hand(dispatcher: Dispatcher, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client, accepted = _connection()
        assert dispatcher.hand(accepted) is not None
        accepted.close()
        clients.append(client)
    return clients


def test_nothing_is_handed_to_a_process_that_does_not_serve_yet() -> None:
    pairs = _pairs(2)
    dispatcher = Dispatcher(socket.socket(), [ours for ours, _ in pairs])
    client, accepted = _connection()
    try:
        assert dispatcher.hand(accepted) is None
        pairs[1][1].send(READY)
        dispatcher.report(1, SELECTOR)
        assert dispatcher.hand(accepted) == 1
    finally:
        client.close()
        accepted.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_connections_are_spread_evenly_and_closes_free_a_place() -> None:
    pairs = _pairs(2)
    dispatcher = _ready(Dispatcher(socket.socket(), [ours for ours, _ in pairs]), pairs)
    clients = _hand(dispatcher, 8)
    try:
        assert dispatcher.open == [4, 4]
        # The second process reports three of its connections closed: the next three go there.
        pairs[1][1].send(CLOSED * 3)
        dispatcher.report(1, SELECTOR)
        assert dispatcher.open == [4, 1]
        clients += _hand(dispatcher, 3)
        assert dispatcher.open == [4, 4]
        assert dispatcher.handed == [4, 7]
        # An odd number alternates: neither process gets two more than the other.
        clients += _hand(dispatcher, 3)
        assert sorted(dispatcher.open) == [5, 6]
    finally:
        for client in clients:
            client.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_a_process_that_is_gone_gets_nothing_more() -> None:
    pairs = _pairs(2)
    dispatcher = _ready(Dispatcher(socket.socket(), [ours for ours, _ in pairs]), pairs)
    pairs[0][1].close()  # the first process exited
    dispatcher.report(0, SELECTOR)
    clients = _hand(dispatcher, 3)
    try:
        assert dispatcher.handed == [0, 3]
    finally:
        for client in clients:
            client.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"served"})


@pytest.fixture
def handed() -> Iterator[tuple[Dispatcher, socket.socket, HandedServer]]:
    """A HandedServer in a thread, fed by a Dispatcher on a real listening socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    config = uvicorn.Config(_hello, log_config=None, access_log=False, lifespan="off", loop="asyncio")
    server = HandedServer(config, theirs)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    listener = socket.create_server(("127.0.0.1", 0))
    dispatcher = Dispatcher(listener, [ours])
    stop = threading.Event()
    accepting = threading.Thread(target=dispatcher.run, args=(stop.is_set,), kwargs={"interval": 0.05}, daemon=True)
    accepting.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield dispatcher, listener, server
    finally:
        stop.set()
        server.should_exit = True
        thread.join(10)
        accepting.join(10)
        listener.close()
        ours.close()
        theirs.close()


def test_a_handed_connection_is_served_and_its_end_reported(
    handed: tuple[Dispatcher, socket.socket, HandedServer],
) -> None:
    dispatcher, listener, _ = handed
    host, port = listener.getsockname()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    for _ in range(3):  # keep-alive: one connection, several requests
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"served")
    assert dispatcher.open == [1]
    connection.close()
    deadline = time.monotonic() + 10
    while dispatcher.open != [0]:
        assert time.monotonic() < deadline, dispatcher.open
        time.sleep(0.01)
    assert dispatcher.handed == [1]
