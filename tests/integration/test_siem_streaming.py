"""Audit streaming to real receivers: RFC 5424 over TCP and TLS (octet-counted frames), JSON lines to
a webhook; nothing skipped across a receiver outage (at least once), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adapters.runtime import Runtime
from adapters.siem import AuditStreamer, SyslogSink, WebhookSink, position_of
from tests.support import postgres_schema, runtime_for, stages

pytestmark = pytest.mark.slow
FRAME = re.compile(rb"(\d+) ")
MESSAGE = re.compile(
    r"<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) stagekeeper - (?P<msgid>\S+) \[stagekeeper@32473 (?P<sd>[^\]]*)\] "
    "\ufeff(?P<msg>.*)",
    re.S,
)


class SyslogReceiver:
    """A TCP (optionally TLS) syslog collector that parses octet-counted frames."""

    def __init__(self, port: int = 0, tls: tuple[Path, Path] | None = None) -> None:
        self.messages: list[str] = []
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = int(self._server.getsockname()[1])
        self._context = None
        if tls is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(str(tls[0]), str(tls[1]))
        self._stopped = threading.Event()
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            if self._context is not None:
                try:
                    conn = self._context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            self._connections.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while (found := FRAME.match(buffer)) and len(buffer) >= found.end() + int(found.group(1)):
                size = int(found.group(1))
                self.messages.append(buffer[found.end() : found.end() + size].decode())
                buffer = buffer[found.end() + size :]

    def positions(self) -> list[int]:
        found = []
        for message in self.messages:
            parsed = MESSAGE.fullmatch(message)
            assert parsed is not None, message
            found.append(int(re.search(r'position="(\d+)"', parsed.group("sd")).group(1)))  # type: ignore[union-attr]
        return found

    def stop(self) -> None:
        self._stopped.set()
        # shutdown() wakes the accept() blocked in the other thread (close() alone would not, on Linux).
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    if request.param == "sqlite":
        built = runtime_for(f"sqlite:///{tmp_path}/sk.db")
        yield built
        built.close()
    else:
        with postgres_schema() as url:
            built = runtime_for(url)
            yield built
            built.close()


def activity(runtime: Runtime, name: str) -> None:
    runtime.app.register_service(name, "audit me", stages("int", pools=f"{name}-"), actor="olivia", reason="why not")
    runtime.projection_follower.catch_up()


def audit_positions(runtime: Runtime) -> list[int]:
    return [int(r["position"]) for r in runtime.store.query("SELECT position FROM sk_audit ORDER BY position")]


def wait_until(check: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_syslog_messages_are_rfc5424_and_survive_an_outage(runtime: Runtime) -> None:
    receiver = SyslogReceiver()
    sink = SyslogSink("127.0.0.1", receiver.port)
    streamer = AuditStreamer(runtime.store, sink, poll_seconds=0.05)
    activity(runtime, "payroll")
    while streamer.step():
        pass
    assert audit_positions(runtime)
    wait_until(lambda: receiver.positions() == audit_positions(runtime))
    first = MESSAGE.fullmatch(receiver.messages[0])
    assert first is not None
    assert first.group("pri") == str(13 * 8 + 5)
    assert first.group("msgid") == "Service.Registered"
    assert 'actor="olivia"' in first.group("sd")
    assert 'reason="why not"' in first.group("sd")
    assert "payroll" in first.group("msg")

    # The receiver goes away: the streamer fails, keeps its position, and resends once it is back.
    port = receiver.port
    receiver.stop()
    activity(runtime, "billing")
    sent_before = position_of(runtime.store, "syslog")
    failures = []
    for _ in range(3):  # the first batch may land in the dead connection's buffer: it is sent again
        try:
            streamer.step()
        except OSError as error:
            failures.append(error)
        time.sleep(0.1)
    assert failures
    assert position_of(runtime.store, "syslog") == sent_before
    back = SyslogReceiver(port=port)
    while streamer.step():
        pass
    missing = set(audit_positions(runtime)) - set(receiver.positions())
    assert missing
    wait_until(lambda: missing <= set(back.positions()))
    received = back.positions()
    assert received == sorted(received)
    back.stop()


def test_syslog_over_tls_verifies_the_collector(runtime: Runtime, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    receiver = SyslogReceiver(tls=(cert, key))
    activity(runtime, "payroll")
    trusting = AuditStreamer(runtime.store, SyslogSink("127.0.0.1", receiver.port, tls=True, ca_file=str(cert)), 0.05)
    while trusting.step():
        pass
    wait_until(lambda: receiver.positions() == audit_positions(runtime))
    # A collector whose certificate is not trusted gets nothing.
    untrusting = SyslogSink("127.0.0.1", receiver.port, tls=True)
    with pytest.raises(ssl.SSLError):
        untrusting.send(runtime.store.query("SELECT * FROM sk_audit LIMIT 1"))
    receiver.stop()


class Collected(BaseHTTPRequestHandler):
    bodies: list[tuple[bytes, str]] = []
    fail = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Collected.fail:
            self.send_response(503)
        else:
            Collected.bodies.append((body, self.headers.get("X-Stagekeeper-Signature", "")))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_webhook_gets_signed_json_lines_and_a_failure_is_retried(runtime: Runtime, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collected)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Collected.bodies, Collected.fail = [], True
    url = f"http://127.0.0.1:{server.server_address[1]}/siem"
    streamer = AuditStreamer(runtime.store, WebhookSink(url, secret="s3cret"), 0.05)
    activity(runtime, "payroll")
    with pytest.raises(OSError, match="503"):
        streamer.step()
    assert position_of(runtime.store, "webhook") == 0
    Collected.fail = False
    while streamer.step():
        pass
    server.shutdown()
    lines = [json.loads(line) for body, _ in Collected.bodies for line in body.splitlines()]
    assert [line["position"] for line in lines] == audit_positions(runtime)
    for body, signature in Collected.bodies:
        assert signature == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_the_runtime_streams_what_the_settings_name(tmp_path: Path) -> None:
    receiver = SyslogReceiver()
    runtime = runtime_for(f"sqlite:///{tmp_path}/sk.db", siem_syslog_address=f"127.0.0.1:{receiver.port}")
    try:
        runtime.start_workers()
        runtime.app.register_service("payroll", "", stages("int"), actor="olivia")
        wait_until(lambda: audit_positions(runtime) and receiver.positions() == audit_positions(runtime))
    finally:
        runtime.close()
        receiver.stop()
