"""The web console address pins vCenter's certificate: its SHA-1 thumbprint, read from a real TLS
server (vcsim serves plain http, so this part is checked against a local server with a
certificate made by `openssl` for the test)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from adapters.vcenter.pyvmomi.console import certificate_thumbprint, web_console_url


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """https://127.0.0.1:<port>/sdk, and the thumbprint `openssl x509 -fingerprint -sha1` gives."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=vcenter.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    fingerprint = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha1", "-in", str(cert)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split("=", 1)[1]  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{port}/sdk", fingerprint
    stop.set()
    thread.join()
    listener.close()


def test_the_thumbprint_is_the_sha1_of_the_certificate_the_server_presents(tls_server: tuple[str, str]) -> None:
    url, expected = tls_server
    assert certificate_thumbprint(url) == expected
    assert certificate_thumbprint(url.replace("https:", "http:")) is None, "plain http has no certificate"


def test_the_web_console_address_carries_what_vcenters_page_takes(tls_server: tuple[str, str]) -> None:
    url, expected = tls_server
    address = web_console_url(url, "vm-42", "sk-1 web", "guid-1", "cst-VCT-52a1--tp-AB", certificate_thumbprint(url))
    parts = urlsplit(address)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", urlsplit(url).netloc, "/ui/webconsole.html")
    assert dict(parse_qsl(parts.query, strict_parsing=True)) == {
        "vmId": "vm-42", "vmName": "sk-1 web", "serverGuid": "guid-1", "host": f"127.0.0.1:{urlsplit(url).port}",
        "sessionTicket": "cst-VCT-52a1--tp-AB", "thumbprint": expected,
    }  # fmt: skip
    vcenter = web_console_url("https://vc.example/sdk", "vm-1", "a", "g", "t", None)
    assert "host=vc.example%3A443&" in vcenter
    assert "thumbprint" not in vcenter
