"""STAGEKEEPER_EXPORT_KEY: exports are sealed with an HMAC of their chain head, and an instance that
has the key imports only files sealed with it (the chain alone proves integrity, not authorship)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.portability import bundle
from tests.e2e.conftest import AUTH
from tests.support import runtime_for, settings_for, stages

KEY = "k" * 40
OTHER_KEY = "o" * 40


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Callable[[str, str | None], TestClient]]:
    """Instances on their own SQLite stores, with or without an export key."""
    with ExitStack() as stack:

        def make(name: str, key: str | None) -> TestClient:
            url = f"sqlite:///{tmp_path}/{name}.db"
            runtime = runtime_for(url, export_key=key)
            stack.callback(runtime.close)
            runtime.ensure_admin()
            client = TestClient(create_app(settings_for(url, export_key=key), runtime=runtime))
            return stack.enter_context(client)

        yield make


def _export(client: TestClient, name: str) -> dict[str, Any]:
    made = client.post("/api/v1/services", auth=AUTH, json={"name": name, "stages": stages("int")})
    assert made.status_code == 201, made.text
    exported = client.get(f"/api/v1/services/{made.json()['id']}/export", auth=AUTH)
    assert exported.status_code == 200, exported.text
    document: dict[str, Any] = exported.json()
    return document


def test_a_keyed_instance_seals_its_exports_and_imports_only_sealed_files(
    instance: Callable[[str, str | None], TestClient],
) -> None:
    source, keyed, stranger, plain = (
        instance("source", KEY),
        instance("keyed", KEY),
        instance("stranger", OTHER_KEY),
        instance("plain", None),
    )
    document = _export(source, "payroll")
    assert len(document["chain"]["hmac"]) == 64
    refused = stranger.post("/api/v1/imports", auth=AUTH, json=document)  # sealed with another key
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "chain.hmac"
    assert keyed.post("/api/v1/imports", auth=AUTH, json=document).status_code == 201
    assert plain.post("/api/v1/imports", auth=AUTH, json=document).status_code == 201  # no key: the chain only


def test_a_keyed_instance_refuses_an_unsealed_or_re_chained_file(
    instance: Callable[[str, str | None], TestClient],
) -> None:
    plain, source, keyed = instance("plain", None), instance("source", KEY), instance("keyed", KEY)
    unsealed = _export(plain, "billing")
    assert "hmac" not in unsealed["chain"]
    refused = keyed.post("/api/v1/imports", auth=AUTH, json=unsealed)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "chain.hmac"
    # An edited file whose chain is computed again keeps a seal that no longer matches its head.
    document = _export(source, "payroll")
    records = copy.deepcopy(document["records"])
    records[0]["state"]["description"] = "edited on the way"
    plain_records = [{k: v for k, v in r.items() if k != "hash"} for r in records]
    forged = bundle(plain_records, document["service"], document["exported_by"], document["exported_at"])
    forged["chain"]["hmac"] = document["chain"]["hmac"]
    refused = keyed.post("/api/v1/imports", auth=AUTH, json=forged)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "chain.hmac"
