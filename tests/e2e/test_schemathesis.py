"""The OpenAPI document against the running app: schemathesis generates requests for every
operation (valid and invalid ones) and runs every check on each answer, including that the body
matches the documented schema, the status and content type are documented, and nothing is a 5xx.

In process (ASGI), against a seeded world so that path ids hit real resources about half the
time; bounded (a few examples per operation) and deterministic, so the suite stays fast and a
failure replays the same way. Run as the break-glass administrator, then as a directory user
who holds no role.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from scripts.slapd_harness import ADMIN_GROUP, BIND_DN, BIND_PASSWORD, GROUP_BASE, USER_BASE, Slapd
from tests.support import FixedClock, machine, stages

USERS = {"admin": ("admin", "secret-pw"), "no-role": ("nobody", "nobody-pw")}
EXAMPLES = {"admin": 6, "no-role": 2}
# Valid input can still break a rule the schema cannot state (an unknown template, a stage that
# holds deployments, a stale If-Match): those are refused with 412 or 422 and the documented body.
ACCEPTED = ["2xx", "401", "403", "404", "409", "412", "422", "503"]
# A read asked to wait for a position the read model never reaches answers 503 by design (any
# min_position is schema-valid); every other 5xx is a failure, see `server_errors`.
NOT_SERVER_ERRORS = ["2xx", "3xx", "4xx", "503"]
# Query filters by id (?service=, ...) get the seeded ids too.
FILTERS = ("service_id", "configuration_id", "deployment_id")


@dataclass
class World:
    runtime: Runtime
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(slapd: Slapd) -> Iterator[World]:
    settings = Settings(
        database_url="memory://", admin_password="secret-pw", poll_seconds=0.02, read_wait_seconds=0.05,
        ldap_url=slapd.url, ldap_bind_dn=BIND_DN, ldap_bind_password=BIND_PASSWORD, ldap_user_base=USER_BASE,
        ldap_group_base=GROUP_BASE, ldap_admin_group=ADMIN_GROUP,
    )  # fmt: skip
    runtime = Runtime(settings, vcenter=SimulatedVCenter(), clock=FixedClock())
    runtime.ensure_admin()
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    service_id = app.register_service("payroll", "", stages("int", "test", "prod"), actor="setup").value.id
    grant = app.grant_role(service_id, "viewer", "victor", None, None, actor="setup").value
    configuration_id = app.create_configuration(
        service_id, "p", "", [{"name": "front"}, {"name": "spare"}], [machine("web1"), machine("app1")], "setup"
    ).value.id
    deployment_id = app.deploy(configuration_id, "int", actor="setup").value.id
    runtime.catch_up()
    archive_id = app.archive_now(deployment_id, actor="setup").value.id
    runtime.catch_up()
    _, token, _ = app.issue_token("admin", "ci", 30, actor="admin")
    runtime.start_workers()
    ids = {
        "service_id": str(service_id), "configuration_id": str(configuration_id), "deployment_id": str(deployment_id),
        "grant_id": grant["id"], "token_id": str(token.id), "stage": "test", "name": "web1", "machine": "web1",
        "archive_id": str(archive_id),
    }  # fmt: skip
    yield World(runtime, ids)
    runtime.close()


def config(world: World, user: str) -> SchemathesisConfig:
    name, password = USERS[user]
    # Path ids point at the seeded resources half the time: random ids only ever find nothing, and
    # the 2xx answers are what most needs checking against the document.
    seeded = {key: {"values": [value]} for key, value in world.ids.items()}
    return SchemathesisConfig.from_dict(
        {
            "seed": 20261126,
            # What is checked is the answers, not their speed: a loaded machine once took over 10 s
            # (schemathesis's default) for one of them.
            "request-timeout": 120,
            "auth": {"basic": {"username": name, "password": password}},
            "generation": {"max-examples": EXAMPLES[user], "deterministic": True, "database": "none"},
            "dictionaries": seeded,
            "parameters": {
                **{f"path.{key}": {"dictionary": key, "probability": 0.5} for key in seeded},
                **{f"query.{key.removesuffix('_id')}": {"dictionary": key, "probability": 0.5} for key in FILTERS},
            },
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED},
                "not_a_server_error": {"expected-statuses": NOT_SERVER_ERRORS},
            },
        }
    )


def server_errors(recorder: ScenarioRecorder) -> Iterator[str]:
    """5xx answers, except the designed 503 of a read that waited for `min_position` in vain."""
    for interaction in recorder.interactions.values():
        response = interaction.response
        if response is None or response.status_code < 500:
            continue
        try:
            field = json.loads(response.content)["error"]["field"]
        except (ValueError, KeyError, TypeError):
            field = None
        if response.status_code != 503 or field != "min_position":
            yield f"{interaction.request.method} {interaction.request.uri}: {response.status_code} {response.content!r}"


def failures(world: World, user: str) -> list[str]:
    """Run schemathesis as its command line does (every phase, every check); what it found, one line each."""
    app = create_app(world.runtime.settings, runtime=world.runtime, start_workers=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config(world, user))
    found: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            found.extend(f"{event.recorder.label}: server error: {text}" for text in server_errors(event.recorder))
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        step = check.failure_info.steps[-1].curl if check.failure_info.steps else case_id
                        found.append(
                            f"{event.recorder.label}: {check.name}: {failure.title}: {failure.message} [{step}]"
                        )
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            found.append(f"error: {event}")
    return sorted(set(found))


@pytest.mark.parametrize("user", ["admin", "no-role"])
def test_the_api_keeps_its_documented_contract(world: World, user: str) -> None:
    found = failures(world, user)
    assert found == [], f"{len(found)} schemathesis failure(s) as {user}:\n" + "\n".join(found)
