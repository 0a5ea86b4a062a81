"""The media library over HTTP: a streamed upload (bounded memory in a real server), the body
rules of an upload, listing, the delete refused while attached, and the dependency tree."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from tests.e2e.conftest import AUTH, Server
from tests.support import machine, stages

ISO_HEADERS = {"content-type": "application/octet-stream"}
MIB = 1 << 20


def upload(client: TestClient, name: str, body: bytes, **headers: str) -> httpx.Response:
    answer: httpx.Response = client.post(
        "/api/v1/media", params={"name": name}, content=body, headers={**ISO_HEADERS, **headers}, auth=AUTH
    )
    return answer


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def test_a_100_mib_upload_streams_through_a_real_server_without_holding_the_body(sqlite_server: Server) -> None:
    size, piece = 100 * MIB, 256 * 1024
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for i in range(size // piece):
            chunk = bytes([i % 256]) * piece
            digest.update(chunk)
            yield chunk

    with sqlite_server.client() as client:
        assert client.get("/api/v1/media").status_code == 200  # warm: routes, database, read models
        before = peak_rss_kib(sqlite_server.process.pid)
        started = time.monotonic()
        answer = client.post(
            "/api/v1/media", params={"name": "big.iso"}, content=body(),
            headers={**ISO_HEADERS, "content-length": str(size)}, timeout=120,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        assert answer.status_code == 201, answer.text
        grown_mib = (peak_rss_kib(sqlite_server.process.pid) - before) / 1024
        medium = answer.json()
        assert (medium["size"], medium["sha256"]) == (size, digest.hexdigest())
        # Held in memory at once: a few chunks, never the 100 MiB (the bound leaves room for the
        # interpreter's own growth while serving).
        assert grown_mib < 40, f"the server's peak RSS grew by {grown_mib:.0f} MiB during a 100 MiB upload"
        listed = client.get("/api/v1/media", params={"min_position": medium["position"]}).json()["items"]
        assert [m["name"] for m in listed] == ["big.iso"]
    print(f"100 MiB upload: {elapsed:.2f}s, peak RSS +{grown_mib:.1f} MiB")


def test_an_upload_must_be_an_iso_body_with_a_length_within_the_bound(client: TestClient) -> None:
    json_body = client.post("/api/v1/media", params={"name": "a.iso"}, json={"x": 1}, auth=AUTH)
    assert json_body.status_code == 415
    assert json_body.json()["error"]["field"] == "content-type"
    too_big = upload(client, "a.iso", b"x", **{"content-length": str(64 << 30)})
    assert too_big.status_code == 413
    assert "STAGEKEEPER_MEDIA_MAX_BYTES" in too_big.json()["error"]["message"]
    empty = upload(client, "a.iso", b"")
    assert empty.status_code == 422
    bad_name = upload(client, "../a.iso", b"abc")
    assert (bad_name.status_code, bad_name.json()["error"]["field"]) == (422, "name")
    first = upload(client, "a.iso", b"abc")
    assert first.status_code == 201
    again = upload(client, "a.iso", b"abcd")
    assert again.status_code == 409
    assert again.json()["error"]["position"] > 0  # the refusal is audited


def test_a_medium_attached_to_a_machine_cannot_be_deleted_until_detached(client: TestClient, runtime: Runtime) -> None:
    medium = upload(client, "tools.iso", b"\x00" * 4096).json()
    assert (
        client.get(f"/api/v1/media/{medium['id']}", auth=AUTH).json()["sha256"]
        == hashlib.sha256(b"\x00" * 4096).hexdigest()
    )
    client.post("/api/v1/templates/import", json={"all": True}, auth=AUTH)
    service = client.post("/api/v1/services", json={"name": "shop", "stages": stages("int")}, auth=AUTH).json()
    configuration = client.post(
        f"/api/v1/services/{service['id']}/configurations",
        json={"name": "web", "networks": [{"name": "front"}], "machines": [machine("web1", iso="tools.iso")]},
        auth=AUTH,
    ).json()
    assert configuration["machines"][0]["iso"] == "tools.iso"
    refused = client.delete(f"/api/v1/media/{medium['id']}", auth=AUTH)
    assert refused.status_code == 409
    assert "configuration 'web'" in refused.json()["error"]["message"]
    client.put(f"/api/v1/configurations/{configuration['id']}/machines/web1", json=machine("web1"), auth=AUTH)
    deleted = client.delete(f"/api/v1/media/{medium['id']}", params={"reason": "old"}, auth=AUTH)
    assert deleted.status_code == 200, deleted.text
    assert client.get(f"/api/v1/media/{medium['id']}", auth=AUTH).status_code == 404


def test_the_tree_and_dependants_name_the_linked_clones_and_template_removal_waits_for_them(
    client: TestClient, runtime: Runtime
) -> None:
    client.post("/api/v1/templates/import", json={"all": True}, auth=AUTH)
    service = client.post("/api/v1/services", json={"name": "shop", "stages": stages("int")}, auth=AUTH).json()
    configuration = client.post(
        f"/api/v1/services/{service['id']}/configurations",
        json={"name": "web", "networks": [{"name": "front"}], "machines": [machine("web1")]},
        auth=AUTH,
    ).json()
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
    ).json()
    tree = client.get("/api/v1/storage/tree", params={"service": service["id"]}, auth=AUTH).json()
    rows = {(r["kind"], r["key"]): r for r in tree["rows"]}
    assert rows[("deployment", deployment["id"])]["parent"] == "tpl-ubuntu-2404"
    assert rows[("template", "tpl-ubuntu-2404")]["own_gib"] == 16
    dependants = client.get("/api/v1/templates/tpl-ubuntu-2404/dependants", auth=AUTH).json()
    assert [d["key"] for d in dependants["dependants"]] == [deployment["id"]]
    refused = client.delete("/api/v1/templates/tpl-ubuntu-2404", auth=AUTH)
    assert refused.status_code == 409
    assert deployment["id"] in refused.json()["error"]["message"]
    own = client.get(f"/api/v1/deployments/{deployment['id']}/dependants", auth=AUTH).json()
    assert own["dependants"] == []
    assert client.delete("/api/v1/templates/tpl-rhel-9", auth=AUTH).status_code == 200
    assert client.get("/api/v1/templates/tpl-rhel-9/dependants", auth=AUTH).status_code == 404
