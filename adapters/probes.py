"""Probes of a deployment's machines for verification (the domain's Prober port)."""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit


class NetworkProber:
    def http_status(self, url: str, timeout_seconds: float) -> int:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise OSError(f"not an http URL: {url}")
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout_seconds)
        try:
            connection.request("GET", parts.path or "/", headers={"User-Agent": "stagekeeper-verification"})
            return int(connection.getresponse().status)
        except http.client.HTTPException as error:
            raise OSError(str(error)) from error
        finally:
            connection.close()

    def tcp_open(self, host: str, port: int, timeout_seconds: float) -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout_seconds):
                return True
        except OSError:
            return False
