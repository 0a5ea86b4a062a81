"""Who may call what: every API route as every kind of caller, against a real slapd.

The table below is the specification. A route missing from it fails the test, so a new route
cannot ship without a decision about who may call it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from domain.governance import AwaitingApprovalError
from scripts.slapd_harness import ADMIN_GROUP, BIND_DN, BIND_PASSWORD, GROUP_BASE, OWNERS, READERS, USER_BASE, Slapd
from tests.support import ROOT_POOL, FixedClock, machine, stages

CREDENTIALS: dict[str, tuple[str, str] | None] = {
    "anonymous": None,
    "wrong-password": ("oscar", "not-the-password"),
    "no-role": ("nobody", "nobody-pw"),
    "viewer": ("victor", "victor-pw"),  # through the payroll-readers group (groupOfNames)
    "owner": ("olivia", "olivia-pw"),  # through the payroll-owners group (groupOfNames)
    "operator": ("oscar", "oscar-pw"),  # stage-operator on int and test (user grants)
    "prod-operator": ("petra", "petra-pw"),  # stage-operator on prod, the restricted stage
    "admin": ("alice", "alice-pw"),  # member of the directory's admin group
    "break-glass": ("admin", "secret-pw"),  # the local admin, enabled by STAGEKEEPER_ADMIN_PASSWORD
}
PUBLIC = set(CREDENTIALS)
ANY = PUBLIC - {"anonymous", "wrong-password"}
READ = ANY - {"no-role"}
MANAGE = {"owner", "admin", "break-glass"}
ADMIN = {"admin", "break-glass"}
OPERATE_INT = MANAGE | {"operator"}
OPERATE_PROD = {"prod-operator"}  # restricted: not even owners or administrators

# The world's freeze window, on the payroll service ("{service_id}" is filled in when it is sent).
QUIET = {"name": "quiet", "service_id": "{service_id}", "start": "2030-12-20T00:00", "end": "2030-12-27T00:00"}
S, C, D = "/api/v1/services/{service_id}", "/api/v1/configurations/{configuration_id}", "/api/v1/deployments"
TABLE: dict[tuple[str, str], tuple[set[str], Any]] = {
    ("GET", "/healthz"): (PUBLIC, None),
    ("GET", "/api/v1/me"): (ANY, None),
    ("POST", "/api/v1/services"): (ADMIN, {"name": "hr", "stages": stages("int")}),
    ("GET", "/api/v1/services"): (ANY, None),
    ("GET", S): (READ, None),
    ("PATCH", S): (MANAGE, {"description": "new words"}),
    ("DELETE", S): (MANAGE, None),
    ("POST", S + "/stages"): (MANAGE, {"name": "uat", "resource_pool": f"{ROOT_POOL}/uat"}),
    ("PUT", S + "/stages/order"): (MANAGE, {"order": ["int", "test", "prod", "spare"]}),
    ("PATCH", S + "/stages/{stage}"): (MANAGE, {"restricted": False}),
    ("DELETE", S + "/stages/{stage}"): (MANAGE, None),
    ("POST", S + "/grants"): (MANAGE, {"role": "viewer", "user": "newcomer"}),
    ("GET", S + "/grants"): (READ, None),
    ("DELETE", S + "/grants/{grant_id}"): (MANAGE, None),
    # An owner who is also a stage-operator of the stage; nobody operates "spare", so administrators only.
    ("POST", S + "/stages/{stage}/capture"): (ADMIN, {"configuration": "cap", "vms": ["vm-1"], "dry_run": True}),
    ("POST", S + "/configurations"): (MANAGE, {"name": "other"}),
    ("GET", S + "/configurations"): (READ, None),
    ("GET", C): (READ, None),
    ("PATCH", C): (MANAGE, {"description": "x"}),
    ("GET", C + "/history"): (READ, None),
    ("GET", C + "/diff"): (READ, {"query": {"from": 1}}),
    ("POST", C + "/restore"): (MANAGE, {"version": 1}),
    ("POST", C + "/retire"): (MANAGE, {"reason": "replaced"}),  # 409 for those allowed: it is deployed
    ("POST", C + "/machines"): (MANAGE, machine("web9")),
    ("PUT", C + "/machines/{name}"): (MANAGE, machine("web1", cpus=4)),
    ("DELETE", C + "/machines/{name}"): (MANAGE, None),
    ("POST", C + "/networks"): (MANAGE, {"name": "back"}),
    ("DELETE", C + "/networks/{name}"): (MANAGE, None),
    ("POST", C + "/deployments"): (OPERATE_INT, {"stage": "int"}),
    ("GET", D): (ANY, None),
    ("GET", D + "/{deployment_id}"): (READ, None),
    ("GET", D + "/{deployment_id}/events"): (READ, None),
    ("POST", D + "/{deployment_id}/promote"): (OPERATE_PROD, None),  # test -> prod
    ("POST", D + "/{deployment_id}/demote"): (OPERATE_PROD, None),  # out of prod
    ("POST", D + "/{deployment_id}/undeploy"): (OPERATE_INT, None),
    ("POST", D + "/{deployment_id}/retry"): (OPERATE_INT, None),
    ("POST", D + "/{deployment_id}/copy"): (OPERATE_INT, {"stage": "int"}),  # read on the source + operate int
    ("POST", D + "/{deployment_id}/snapshot"): (OPERATE_INT, {"name": "before"}),
    ("POST", D + "/{deployment_id}/revert"): (OPERATE_INT, {"snapshot": "before"}),
    ("POST", D + "/{deployment_id}/swap"): (OPERATE_PROD, {"replaces": "in_prod"}),  # test copy -> prod
    ("POST", D + "/{deployment_id}/swap-back"): (OPERATE_INT, None),
    ("GET", D + "/{deployment_id}/machines/{machine}/console"): (OPERATE_INT, None),
    ("GET", D + "/{deployment_id}/machines/{machine}/screenshot"): (READ, None),
    ("POST", D + "/{deployment_id}/machines/{machine}/power"): (OPERATE_INT, {"action": "reset"}),
    ("POST", D + "/{deployment_id}/upgrade"): (OPERATE_INT, {"version": 1, "reason": "x"}),  # 409: at v1
    ("POST", D + "/{deployment_id}/power"): (OPERATE_INT, {"action": "off"}),
    ("POST", D + "/{deployment_id}/rebalance"): (OPERATE_INT, {"dry_run": True, "reason": "spread"}),
    ("POST", D + "/{deployment_id}/check"): (OPERATE_INT, None),
    ("POST", D + "/{deployment_id}/drift/{field}/adopt"): (OPERATE_INT, {"reason": "x"}),  # 422: no such field
    ("POST", D + "/{deployment_id}/drift/{field}/revert"): (OPERATE_INT, None),
    ("GET", "/api/v1/drift/orphans"): (ADMIN, None),
    ("GET", D + "/{deployment_id}/promote-preview"): (READ, None),
    ("GET", D + "/{deployment_id}/swap-preview"): (READ, None),  # 422 for readers: not a copy
    ("GET", D + "/{deployment_id}/upgrade-preview"): (READ, {"query": {"version": "1"}}),  # 409: at v1
    ("GET", "/api/v1/templates"): (ANY, None),
    ("POST", "/api/v1/templates/import"): (ADMIN, {"all": True}),
    ("POST", "/api/v1/tokens"): (ANY, {"name": "ci"}),
    ("GET", "/api/v1/tokens"): (ANY, None),
    ("DELETE", "/api/v1/tokens/{token_id}"): (ANY, None),
    ("GET", "/api/v1/board"): (ANY, None),
    ("GET", "/api/v1/inventory"): (READ, {"query": {"service": "{service_id}"}}),
    ("GET", "/api/v1/audit"): (ANY, None),
    ("GET", "/api/v1/audit/export"): (ANY, None),
    ("GET", "/metrics"): (ADMIN, None),
    ("POST", "/api/v1/users"): (ADMIN, {"username": "newbie", "password": "correct horse battery"}),
    ("GET", "/api/v1/users"): (ADMIN, None),
    ("GET", "/api/v1/users/{username}"): (ADMIN, None),  # the break-glass admin reads itself; admins anyone
    ("PATCH", "/api/v1/users/{username}"): (ADMIN, {"display_name": "the admin"}),
    ("POST", "/api/v1/users/{username}/unlock"): (ADMIN, None),  # 409 for those allowed: not locked
    ("PUT", "/api/v1/me/password"): (ANY, {"current_password": "x", "new_password": "y"}),  # 404/422: not local
    ("GET", "/api/v1/groups"): (ADMIN, None),
    ("GET", S + "/export"): (MANAGE, None),
    ("POST", "/api/v1/imports"): (ADMIN, {"format": "not an export"}),  # 422 for administrators
    # Governance. The world's approval request (a copy into "spare") needs one member of the owners' group.
    ("GET", "/api/v1/approvals"): (ANY, None),
    ("GET", "/api/v1/approvals/{approval_id}"): (READ, None),
    ("POST", "/api/v1/approvals/{approval_id}/approve"): ({"owner"}, {"reason": "fine"}),
    ("POST", "/api/v1/approvals/{approval_id}/reject"): ({"owner"}, {"reason": "not now"}),
    ("GET", "/api/v1/stop-the-line"): (ANY, None),
    ("POST", "/api/v1/stop-the-line"): (ADMIN, {"reason": "incident"}),
    ("DELETE", "/api/v1/stop-the-line"): (ADMIN, None),  # 409 for those allowed: the line runs
    ("GET", "/api/v1/freeze-windows"): (ANY, None),
    ("POST", "/api/v1/freeze-windows"): (ADMIN, {**QUIET, "service_id": None, "name": "xmas"}),
    ("GET", "/api/v1/freeze-windows/{window_id}"): (READ, None),
    ("PUT", "/api/v1/freeze-windows/{window_id}"): (MANAGE, {**QUIET, "name": "quieter"}),
    ("DELETE", "/api/v1/freeze-windows/{window_id}"): (MANAGE, None),
    ("GET", S + "/usage"): (READ, None),
    ("GET", "/api/v1/usage/stages"): (ANY, None),
    ("GET", "/api/v1/datastores/usage"): (ANY, None),
    ("POST", D + "/{deployment_id}/archive"): (OPERATE_INT, {"reason": "before the upgrade"}),
    ("GET", "/api/v1/archives"): (ANY, None),
    ("GET", "/api/v1/archives/{archive_id}"): (READ, None),
    ("POST", "/api/v1/archives/{archive_id}/restore"): (OPERATE_INT, {"stage": "int"}),  # over in_int: swap rights
    ("POST", "/api/v1/archives/{archive_id}/move"): (OPERATE_INT, {"tier": "LocalDS_1"}),  # 409: there already
    ("POST", "/api/v1/archives/{archive_id}/hold"): (OPERATE_INT, {"reason": "legal"}),
    ("DELETE", "/api/v1/archives/{archive_id}/hold"): (OPERATE_INT, None),  # 409 for those allowed: not held
    ("PUT", "/api/v1/archives/{archive_id}/retention"): (OPERATE_INT, {"retention_days": 30}),
    ("DELETE", "/api/v1/archives/{archive_id}"): (OPERATE_INT, None),
    # The media library is shared: everyone lists it; service owners upload (415 here: no ISO body).
    ("POST", "/api/v1/media"): (MANAGE, {"query": {"name": "new.iso"}}),
    ("GET", "/api/v1/media"): (ANY, None),
    ("GET", "/api/v1/media/{medium_id}"): (ANY, None),
    ("DELETE", "/api/v1/media/{medium_id}"): (ADMIN, None),  # administrators and its uploader ("setup")
    ("GET", "/api/v1/storage/tree"): (ANY, None),
    ("GET", "/api/v1/templates/{name}/dependants"): (ANY, None),
    ("DELETE", "/api/v1/templates/{name}"): (ADMIN, None),
    ("GET", D + "/{deployment_id}/dependants"): (READ, None),
    ("PATCH", D + "/{deployment_id}/lease"): (OPERATE_INT, {"keep": True}),
    ("GET", "/api/v1/leases/report"): (ANY, None),
    ("POST", "/api/v1/webhooks"): (
        MANAGE,
        {"url": "http://127.0.0.1:9/hook", "kinds": ["lease-expiring"], "service_id": "{service_id}"},
    ),
    ("GET", "/api/v1/webhooks"): (ANY, None),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): (MANAGE, None),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): (MANAGE, None),
}


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    ids: dict[str, str]


def settings(slapd: Slapd) -> Settings:
    return Settings(
        database_url="memory://", admin_password="secret-pw", poll_seconds=0.05, ldap_url=slapd.url,
        ldap_bind_dn=BIND_DN, ldap_bind_password=BIND_PASSWORD, ldap_user_base=USER_BASE,
        ldap_group_base=GROUP_BASE, ldap_admin_group=ADMIN_GROUP,
    )  # fmt: skip


@pytest.fixture
def world_factory(slapd: Slapd) -> Iterator[Any]:
    made: list[Runtime] = []

    def build(role: str) -> World:
        config = settings(slapd)
        runtime = Runtime(config, vcenter=SimulatedVCenter(), clock=FixedClock())
        made.append(runtime)
        runtime.ensure_admin()
        app = runtime.app
        app.import_templates(None, True, actor="setup")
        service_id = app.register_service(
            "payroll", "", [*stages("int", "test", "prod", restricted=("prod",)), *stages("spare")], actor="setup"
        ).value.id
        for role_name, user, group, stage in (
            ("service-owner", None, OWNERS, None),
            ("viewer", None, READERS, None),
            ("stage-operator", "oscar", None, "int"),
            ("stage-operator", "oscar", None, "test"),
            ("stage-operator", "petra", None, "prod"),
        ):
            app.grant_role(service_id, role_name, user, group, stage, actor="setup")
        extra = app.grant_role(service_id, "viewer", "ex-employee", None, None, actor="setup").value
        configuration_id = app.create_configuration(
            service_id, "p", "", [{"name": "front"}, {"name": "spare"}], [machine("web1"), machine("app1")], "setup"
        ).value.id
        in_int = app.deploy(configuration_id, "int", actor="setup").value.id
        in_test = app.deploy(configuration_id, "test", actor="setup").value.id
        in_prod = app.deploy(configuration_id, "prod", actor="setup").value.id
        medium = app.upload_medium("setup.iso", 4, [b"abcd"], "DC0", "LocalDS_0", 1024, actor="setup").value
        runtime.catch_up()
        app.update_stage(service_id, "spare", {"approvals": {"required": 1, "group": OWNERS}}, actor="setup")
        with pytest.raises(AwaitingApprovalError) as held:
            app.copy_deployment(in_int, "spare", actor="setup")
        window = app.add_freeze_window({**QUIET, "service_id": str(service_id)}, actor="setup").value
        archive_id = app.archive_now(in_int, actor="setup").value.id
        webhook = app.subscribe_webhook(service_id, ["lease-expiring"], "http://127.0.0.1:9/hook", actor="setup")
        runtime.catch_up()
        user = (CREDENTIALS[role] or ("anonymous", ""))[0]
        _, token, _ = app.issue_token(user, "mine", 30, actor=user)
        ids = {
            "{service_id}": str(service_id), "{configuration_id}": str(configuration_id), "{stage}": "spare",
            "{grant_id}": extra["id"], "{name}": "web1", "{token_id}": str(token.id), "in_int": str(in_int),
            "in_test": str(in_test), "in_prod": str(in_prod), "{machine}": "web1", "{username}": "admin",
            "{approval_id}": str(held.value.approval.id), "{window_id}": window["id"],
            "{archive_id}": str(archive_id),
            "{webhook_id}": str(webhook.value.id),
        }  # fmt: skip
        ids["{medium_id}"] = str(medium.id)
        client = TestClient(create_app(config, runtime=runtime, start_workers=False), raise_server_exceptions=True)
        return World(client, runtime, ids)

    yield build
    for runtime in made:
        runtime.close()


def call(world: World, method: str, template: str, spec: Any, role: str) -> int:
    path = template
    for placeholder, value in world.ids.items():
        if placeholder.startswith("{"):
            path = path.replace(placeholder, value)
    deployment = {"/promote": "in_test", "/demote": "in_prod"}.get(path[path.rfind("/") :], "in_int")
    path = path.replace("{deployment_id}", world.ids[deployment])
    if template.endswith("/networks/{name}"):
        path = path.replace("/web1", "/spare")
    body, params = spec, None
    if isinstance(spec, dict) and "query" in spec:
        body, params = None, {k: world.ids.get(v, v) for k, v in spec["query"].items()}
    if isinstance(body, dict) and body.get("replaces") in world.ids:
        body = {**body, "replaces": world.ids[body["replaces"]]}
    if isinstance(body, dict) and body.get("service_id") in world.ids:
        body = {**body, "service_id": world.ids[body["service_id"]]}
    credentials = CREDENTIALS[role]
    response = world.client.request(method, path, json=body, params=params, auth=credentials)
    assert response.status_code < 500, (role, method, path, response.text)
    return int(response.status_code)


def test_the_table_covers_every_route(world_factory: Any) -> None:
    world = world_factory("admin")
    spec = world.client.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, methods in spec["paths"].items() for m in methods}
    assert routes | {("GET", "/healthz")} == set(TABLE)


@pytest.mark.parametrize("role", list(CREDENTIALS))
def test_every_route_allows_exactly_the_roles_in_the_table(world_factory: Any, role: str) -> None:
    # A call that may change the world (any method but GET, by a role the table allows) gets a world
    # of its own, so no other call sees its effect. Reads, and calls the table refuses, share one
    # world: they must change nothing, and one that wrongly went through is reported all the same.
    mistakes = []
    shared = world_factory(role)
    for (method, template), (allowed, spec) in TABLE.items():
        world = world_factory(role) if method != "GET" and role in allowed else shared
        status = call(world, method, template, spec, role)
        granted = status not in (401, 403)
        if granted != (role in allowed):
            mistakes.append(f"{method} {template}: {status} ({'allowed' if granted else 'denied'})")
        if world is not shared:
            world.runtime.close()
    assert mistakes == [], f"{role}: " + "; ".join(mistakes)


def test_reads_are_filtered_to_the_services_a_caller_holds_a_role_on(world_factory: Any) -> None:
    world = world_factory("admin")
    world.runtime.app.register_service("secret-project", "", stages("int", pools="secret-"), actor="setup")
    world.runtime.catch_up()
    as_viewer = world.client.get("/api/v1/services", auth=CREDENTIALS["viewer"]).json()["items"]
    assert [s["name"] for s in as_viewer] == ["payroll"]
    as_admin = world.client.get("/api/v1/services", auth=CREDENTIALS["admin"]).json()["items"]
    assert sorted(s["name"] for s in as_admin) == ["payroll", "secret-project"]
    assert world.client.get("/api/v1/services", auth=CREDENTIALS["no-role"]).json()["items"] == []
    audit = world.client.get("/api/v1/audit", params={"limit": 1000}, auth=CREDENTIALS["viewer"]).json()["items"]
    assert audit
    assert {e["service_id"] for e in audit} == {world.ids["{service_id}"]}
    board = world.client.get("/api/v1/board", auth=CREDENTIALS["no-role"]).json()
    assert board["services"] == []


# Every list or search route with each of its filters. "{...}" values are filled from the world;
# "{secret_*}" are ids of a second service on which neither caller below holds a role.
LIST_FILTERS: dict[str, list[dict[str, str]]] = {
    "/api/v1/services": [{}, {"include_retired": "true"}, {"min_position": "1"}],
    "/api/v1/services/{secret_service}/configurations": [{}],
    "/api/v1/services/{secret_service}/grants": [{}],
    "/api/v1/configurations/{secret_configuration}/history": [{}],
    D: [
        {}, {"service": "{secret_service}"}, {"configuration": "{secret_configuration}"}, {"stage": "int"},
        {"state": "requested"}, {"state": "deployed"}, {"limit": "1"}, {"min_position": "1"},
        {"drifted": "true"}, {"drifted": "false"},
    ],
    "/api/v1/board": [
        {}, {"as_of": "2030-01-01T00:00:00Z"}, {"min_position": "1"}, {"service": "{secret_service}"},
        {"service": "{secret_service}", "as_of": "2030-01-01T00:00:00Z"}, {"limit": "1"}, {"stage": "int"},
        {"q": "s"}, {"q": "s", "as_of": "2030-01-01T00:00:00Z"}, {"per_stage": "0"},
    ],
    "/api/v1/inventory": [{"service": "{secret_service}"}, {"service": "{secret_service}", "stage": "int"}],
    "/api/v1/audit": [
        {}, {"service": "{secret_service}"}, {"configuration": "{secret_configuration}"},
        {"deployment": "{secret_deployment}"}, {"stage": "int"}, {"actor": "setup"}, {"type": "Deployment."},
        {"type": "Service.Registered"}, {"from": "2020-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
    ],
    "/api/v1/audit/export": [
        {}, {"format": "csv"}, {"service": "{secret_service}"}, {"configuration": "{secret_configuration}"},
        {"deployment": "{secret_deployment}"}, {"actor": "setup"}, {"type": "Service."},
    ],
    "/api/v1/templates": [{}],
    "/api/v1/tokens": [{}, {"all": "true"}],
    "/api/v1/users": [{}, {"group": "administrators"}],
    "/api/v1/groups": [{}],
    "/api/v1/approvals": [{}, {"state": "pending"}, {"state": "approved"}, {"service": "{secret_service}"}],
    "/api/v1/freeze-windows": [{}, {"service": "{secret_service}"}],
    "/api/v1/services/{secret_service}/usage": [
        {}, {"stage": "int"}, {"from": "2025-12-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "step": "3600"},
    ],
    "/api/v1/usage/stages": [{}, {"as_of": "2030-01-01T00:00:00Z"}, {"min_position": "1"}],
    "/api/v1/datastores/usage": [{}, {"from": "2025-12-31T00:00:00Z", "to": "2026-01-01T01:00:00Z", "step": "300"}],
    "/api/v1/archives": [{}, {"service_id": "{secret_service}"}, {"limit": "1"}, {"offset": "0"}],
    "/api/v1/media": [{}, {"min_position": "1"}],
    "/api/v1/storage/tree": [{}, {"service": "{secret_service}"}],
    "/api/v1/drift/orphans": [{}],
    "/api/v1/leases/report": [{}, {"days": "30"}, {"dry_run": "true", "days": "0"}, {"min_position": "1"}],
    "/api/v1/webhooks": [{}, {"min_position": "1"}],
    "/api/v1/webhooks/{secret_webhook}/deliveries": [{}, {"limit": "1"}, {"before": "1000000"}],
}  # fmt: skip
SINGLE_READS = {
    "/healthz", "/api/v1/me", S, C, C + "/diff", D + "/{deployment_id}", D + "/{deployment_id}/events",
    D + "/{deployment_id}/machines/{machine}/console", D + "/{deployment_id}/machines/{machine}/screenshot",
    "/metrics", "/api/v1/users/{username}", S + "/export",
    "/api/v1/approvals/{approval_id}", "/api/v1/stop-the-line", "/api/v1/freeze-windows/{window_id}",
    "/api/v1/archives/{archive_id}",
    D + "/{deployment_id}/promote-preview", D + "/{deployment_id}/swap-preview", D + "/{deployment_id}/upgrade-preview",
}  # fmt: skip
SINGLE_READS |= {"/api/v1/media/{medium_id}", "/api/v1/templates/{name}/dependants", D + "/{deployment_id}/dependants"}


def test_every_list_route_and_filter_hides_the_services_a_caller_holds_no_role_on(world_factory: Any) -> None:
    world = world_factory("admin")
    app = world.runtime.app
    secret = app.register_service("secret-project", "", stages("int", pools="secret-"), actor="setup").value.id
    secret_configuration = app.create_configuration(
        secret, "hidden", "", [{"name": "front"}], [machine("db7")], "setup"
    ).value.id
    secret_deployment = app.deploy(secret_configuration, "int", actor="setup").value.id
    app.change_lease(secret_deployment, {"extend_by": "P1D"}, actor="setup")  # in the lease report, unfiltered
    secret_webhook = app.subscribe_webhook(secret, ["drift"], "http://127.0.0.1:9/secret-hook", actor="setup")
    world.runtime.catch_up()
    # A freeze window and an approval request of the secret service: neither caller may see them.
    app.add_freeze_window({**QUIET, "service_id": str(secret)}, actor="setup")
    app.update_stage(secret, "int", {"approvals": {"required": 1, "group": ADMIN_GROUP}}, actor="setup")
    with pytest.raises(AwaitingApprovalError):
        app.copy_deployment(secret_deployment, "int", actor="setup")
    world.runtime.catch_up()
    world.runtime.usage.collector.collect_once()  # used resources of both services, for the usage lists
    secret_archive = app.archive_now(secret_deployment, actor="setup").value.id
    world.runtime.catch_up()
    fill = {
        "{secret_service}": str(secret),
        "{secret_configuration}": str(secret_configuration),
        "{secret_deployment}": str(secret_deployment),
        "{secret_archive}": str(secret_archive),
        "{secret_webhook}": str(secret_webhook.value.id),
    }
    hidden_from_viewer = {*fill.values(), "secret-project", "secret-hook"}
    # A caller with no role sees nothing of either service; a viewer of payroll nothing of the other.
    hidden = {
        "no-role": hidden_from_viewer | {world.ids["{service_id}"], world.ids["in_int"]},
        "viewer": hidden_from_viewer,
    }
    # Every GET route is either a list above or a read of one object (checked by read_service).
    lists = {t.replace("{secret_service}", "{service_id}") for t in LIST_FILTERS}
    lists = {t.replace("{secret_configuration}", "{configuration_id}") for t in lists}
    lists = {t.replace("{secret_webhook}", "{webhook_id}") for t in lists}
    assert {t for (m, t) in TABLE if m == "GET"} == lists | SINGLE_READS
    leaks = []
    for role, secrets in hidden.items():
        for template, variants in LIST_FILTERS.items():
            path = template
            for placeholder, value in fill.items():
                path = path.replace(placeholder, value)
            for params in variants:
                query = {k: fill.get(v, v) for k, v in params.items()}
                response = world.client.get(path, params=query, auth=CREDENTIALS[role])
                assert response.status_code in (200, 403, 404), (role, path, query, response.text)
                # An id the caller sent may be echoed back (e.g. in a 403): that tells them nothing.
                sent = {v for v in fill.values() if v in path or v in query.values()}
                seen = [s for s in secrets - sent if s in response.text]
                if seen:
                    leaks.append(f"{role} GET {path} {query}: {response.status_code} shows {seen}")
    assert not leaks, "\n".join(leaks)


def test_me_shows_groups_and_effective_roles(world_factory: Any) -> None:
    world = world_factory("operator")
    me = world.client.get("/api/v1/me", auth=CREDENTIALS["operator"]).json()
    assert me["user"] == "oscar"
    assert me["admin"] is False
    assert sorted((r["role"], r["stage"]) for r in me["roles"]) == [
        ("stage-operator", "int"),
        ("stage-operator", "test"),
    ]
    admin = world.client.get("/api/v1/me", auth=CREDENTIALS["admin"]).json()
    assert admin["admin"] is True
    assert ADMIN_GROUP in admin["groups"]


def test_refusals_grants_and_revocations_are_in_the_audit_with_who_did_them(world_factory: Any) -> None:
    world = world_factory("owner")
    client, sid = world.client, world.ids["{service_id}"]
    refused = client.post(f"/api/v1/deployments/{world.ids['in_test']}/promote", auth=CREDENTIALS["owner"])
    assert refused.status_code == 403
    assert "restricted" in refused.json()["error"]["message"]
    granted = client.post(
        f"/api/v1/services/{sid}/grants", json={"role": "viewer", "user": "zoe"}, auth=CREDENTIALS["owner"]
    )
    revoked = client.delete(f"/api/v1/services/{sid}/grants/{granted.json()['id']}", auth=CREDENTIALS["owner"])
    world.runtime.catch_up()
    entries = client.get("/api/v1/audit", params={"service": sid, "limit": 1000}, auth=CREDENTIALS["admin"]).json()
    by_type = {e["event_type"]: e for e in entries["items"] if e["actor"] == "olivia"}
    assert "restricted" in by_type["Refusal.Recorded"]["summary"]
    assert by_type["Service.Granted"]["summary"] == "granted viewer to user zoe"
    assert by_type["Service.GrantRevoked"]["summary"] == "revoked viewer from user zoe"
    assert revoked.json()["position"] > granted.json()["position"]


def test_the_audit_records_the_directory_uid_whatever_spelling_the_user_typed(world_factory: Any) -> None:
    world = world_factory("owner")
    client, sid = world.client, world.ids["{service_id}"]
    shouting = ("OLIVIA ", "olivia-pw")  # the directory matches uid case-insensitively, spaces ignored
    assert client.get("/api/v1/me", auth=shouting).json()["user"] == "olivia"
    changed = client.patch(f"/api/v1/services/{sid}", json={"description": "typed loudly"}, auth=shouting)
    assert changed.status_code == 200
    refused = client.post(f"/api/v1/deployments/{world.ids['in_test']}/promote", auth=shouting)
    assert refused.status_code == 403
    token = client.post("/api/v1/tokens", json={"name": "ci"}, auth=shouting)
    assert token.json()["user"] == "olivia"
    world.runtime.catch_up()
    entries = client.get("/api/v1/audit", params={"limit": 1000}, auth=CREDENTIALS["admin"]).json()["items"]
    by_olivia = {e["event_type"] for e in entries if e["actor"] == "olivia"}
    assert {"Service.DescriptionChanged", "Refusal.Recorded", "ApiToken.Issued"} <= by_olivia
    assert {e["actor"] for e in entries} <= {"setup", "olivia", "stagekeeper", None}


def test_callers_list_their_own_tokens_and_administrators_everyone_s_never_the_secret(world_factory: Any) -> None:
    world = world_factory("viewer")  # victor holds one token ("mine") already
    client = world.client
    issued = client.post("/api/v1/tokens", json={"name": "ci"}, auth=CREDENTIALS["viewer"]).json()
    client.post("/api/v1/tokens", json={"name": "olivia's"}, auth=CREDENTIALS["owner"])
    client.delete(f"/api/v1/tokens/{world.ids['{token_id}']}", auth=CREDENTIALS["viewer"])
    world.runtime.catch_up()
    mine = client.get("/api/v1/tokens", auth=CREDENTIALS["viewer"])
    assert mine.status_code == 200
    listed = {t["name"]: t for t in mine.json()["items"]}
    assert set(listed) == {"ci", "mine"}
    assert (listed["ci"]["revoked"], listed["mine"]["revoked"]) == (False, True)
    assert listed["ci"]["hint"] == issued["hint"]
    assert issued["token"] not in mine.text
    assert issued["token"][4:12] not in mine.text  # no part of the secret, only the digest's hint
    assert client.get("/api/v1/tokens", params={"all": "true"}, auth=CREDENTIALS["viewer"]).status_code == 403
    everyone = client.get("/api/v1/tokens", params={"all": "true"}, auth=CREDENTIALS["admin"]).json()["items"]
    assert {t["user"] for t in everyone} >= {"victor", "olivia"}


def test_a_token_keeps_working_when_the_directory_is_down_but_passwords_get_503(slapd: Slapd, tmp_path: Any) -> None:
    from scripts.slapd_harness import start as start_slapd

    own = start_slapd(tmp_path)
    config = settings(own)
    runtime = Runtime(config, vcenter=SimulatedVCenter(), clock=FixedClock())
    try:
        service_id = runtime.app.register_service("payroll", "", stages("int"), actor="setup").value.id
        runtime.app.grant_role(service_id, "viewer", None, READERS, None, actor="setup")
        runtime.catch_up()
        client = TestClient(create_app(config, runtime=runtime, start_workers=False))
        token = client.post("/api/v1/tokens", json={"name": "ci"}, auth=CREDENTIALS["viewer"]).json()["token"]
        assert client.get("/healthz").json()["directory"] == "ok"
        own.stop()
        health = client.get("/healthz").json()
        assert (health["status"], health["directory"]) == ("degraded", "unreachable")
        down = client.get("/api/v1/services", auth=("olivia", "olivia-pw"))
        assert down.status_code == 503
        assert "unreachable" in down.json()["error"]["message"]
        client.app.state.authenticator.forget_all()  # type: ignore[attr-defined]
        with_token = client.get(
            f"/api/v1/services/{UUID(str(service_id))}", headers={"Authorization": f"Bearer {token}"}
        )
        assert with_token.status_code == 200
    finally:
        own.stop()
        runtime.close()
