"""Who may use which console page, and the console's session rules, without a browser.

TABLE is the specification of every /ui route: a route missing from it fails the first test.
Sessions are minted with the app's own codec for principals as the Authenticator returns them,
so the permission rules run exactly as after a sign-in (the sign-in itself is tested with a
directory in test_console_browser.py and below for the local admin).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from api.auth import Principal
from api.ui.session import COOKIE, Session
from domain.governance import AwaitingApprovalError
from projections.audit_queries import AuditFilter
from tests.support import ROOT_POOL, machine, runtime_for, settings_for, stages

READERS, OWNERS = "cn=payroll-readers,dc=test", "cn=payroll-owners,dc=test"
PRINCIPALS: dict[str, Principal | None] = {
    "anonymous": None,
    "no-role": Principal("nobody", False, "password"),
    "viewer": Principal("victor", False, "password", frozenset({READERS})),
    "operator": Principal("oscar", False, "password"),  # stage-operator on int and test
    "prod-operator": Principal("petra", False, "password"),  # stage-operator on prod (restricted)
    "owner": Principal("olivia", False, "password", frozenset({OWNERS})),
    "admin": Principal("alice", True, "password"),
}
SIGNED_IN = set(PRINCIPALS) - {"anonymous"}
READ = SIGNED_IN - {"no-role"}
MANAGE = {"owner", "admin"}
ADMIN = {"admin"}
OPERATE_INT = MANAGE | {"operator"}
OPERATE_PROD = {"prod-operator"}
CAPTURE_TEST = MANAGE  # an owner who operates 'test' (olivia), and admins; oscar operates it but owns nothing
PUBLIC = {*PRINCIPALS}
TICKET: set[str] = set()  # a console ticket in the address, whoever holds it
STREAM = "stream"  # a never-ending response: only its refusal of anonymous callers is checked here

S, C, D = "/ui/services/{service_id}", "/ui/configurations/{configuration_id}", "/ui/deployments/{deployment_id}"
MACHINE_FORM = {"name": "web9", "template": "tpl-ubuntu-2404", "cpus": "1", "memory_mib": "1024", "nics": "front"}
TABLE: dict[tuple[str, str], tuple[set[str], Any]] = {
    ("GET", "/"): (PUBLIC, None),
    ("GET", "/ui/login"): (PUBLIC, None),
    ("POST", "/ui/login"): (PUBLIC, None),
    ("POST", "/ui/logout"): (SIGNED_IN, {}),
    ("GET", "/ui/"): (SIGNED_IN, None),
    ("GET", "/ui/board"): (SIGNED_IN, None),
    ("GET", "/ui/events"): (SIGNED_IN, STREAM),
    ("GET", "/ui/copies"): (SIGNED_IN, None),
    ("GET", "/ui/leases"): (SIGNED_IN, None),
    ("GET", "/ui/archives"): (SIGNED_IN, None),
    ("GET", "/ui/resources"): (SIGNED_IN, None),
    ("GET", "/ui/services/new"): (ADMIN, None),
    ("POST", "/ui/services"): (ADMIN, {"name": "hr", "stages[0].name": "int",
                                       "stages[0].resource_pool": "/DC0/host/DC0_C0/Resources/hr"}),
    ("GET", S): (READ, None),
    ("POST", S + "/description"): (MANAGE, {"description": "new words"}),
    ("POST", S + "/stages"): (MANAGE, {"name": "uat", "resource_pool": "/DC0/host/DC0_C0/Resources/uat"}),
    ("POST", S + "/stages/{stage}"): (MANAGE, {"name": "spare2"}),
    ("POST", S + "/stages/{stage}/move"): (MANAGE, {"direction": "up"}),
    ("POST", S + "/stages/{stage}/remove"): (MANAGE, {}),
    ("POST", S + "/stages/{stage}/ip-pools"): (MANAGE, {"cidr": "10.9.0.0/24", "gateway": "10.9.0.1"}),
    ("POST", S + "/stages/{stage}/fencing"): (MANAGE, {"dvswitch": "DVS0", "vlan_first": "10", "vlan_last": "20",
                                                   "fence_gateway_template": "tpl-ubuntu-2404",
                                                   "external_network": "VM Network"}),
    ("POST", S + "/stages/{stage}/ip-pools/{index}/remove"): (MANAGE, {}),
    ("POST", S + "/grants"): (MANAGE, {"role": "viewer", "kind": "user", "member": "newcomer"}),
    ("POST", S + "/grants/{grant_id}/revoke"): (MANAGE, {}),
    ("POST", S + "/configurations"): (MANAGE, {"name": "other", "networks": "front"}),
    ("POST", S + "/capture"): (CAPTURE_TEST, {"stage": "test", "configuration": "legacy", "vms": "LEGACY_1",
                                              "intent": "preview"}),
    ("GET", C): (READ, None),
    ("GET", C + "/version"): (READ, None),
    ("GET", C + "/diff"): (READ, {"query": {"from": "1"}}),
    ("POST", C + "/machines"): (MANAGE, MACHINE_FORM),
    ("POST", C + "/machines/{name}"): (MANAGE, {**MACHINE_FORM, "name": "web1", "cpus": "4"}),
    ("POST", C + "/machines/{name}/remove"): (MANAGE, {}),
    ("POST", C + "/networks"): (MANAGE, {"name": "back"}),
    ("POST", C + "/networks/{name}/remove"): (MANAGE, {}),
    ("POST", C + "/restore"): (MANAGE, {"version": "1"}),
    ("POST", C + "/deploy"): (OPERATE_INT, {"stage": "int"}),
    ("GET", D): (READ, None),
    ("GET", D + "/live"): (READ, None),
    ("GET", D + "/machines/{name}/screenshot"): (READ, None),
    ("GET", D + "/machines/{name}/console"): (OPERATE_INT, None),
    ("GET", D + "/machines/{name}/console/open"): (OPERATE_INT, None),
    # The simulated vCenter's console page: its ticket is the credential, not a session (see
    # test_console_simulated.py): without a valid ticket it is refused to everyone.
    ("GET", "/ui/simulated-vcenter/webconsole.html"): (TICKET, None),
    ("GET", "/ui/simulated-vcenter/screen.png"): (TICKET, None),
    ("POST", D + "/machines/{name}/power"): (OPERATE_INT, {"action": "reset"}),
    ("POST", D + "/power"): (OPERATE_INT, {"action": "off"}),
    ("POST", D + "/copy"): (OPERATE_INT, {"stage": "int"}),  # read on the source + operator of the target
    ("POST", D + "/snapshot"): (OPERATE_INT, {"name": "before"}),
    ("POST", D + "/revert"): (OPERATE_INT, {"snapshot": "before"}),
    ("POST", D + "/swap"): (OPERATE_INT, {"replaces": "{deployment_id}"}),  # operator of the replaced one's stage
    ("POST", D + "/swap-back"): (OPERATE_INT, {}),
    ("POST", D + "/upgrade"): (OPERATE_INT, {"version": "1", "reason": "x"}),  # v1: without the network 'extra'
    ("GET", D + "/rebalance"): (OPERATE_INT, None),  # the dry-run plan and its confirmation
    ("POST", D + "/rebalance"): (OPERATE_INT, {"reason": "spread"}),
    ("POST", D + "/check"): (OPERATE_INT, {}),
    ("POST", D + "/drift/{field}/{action}"): (OPERATE_INT, {"reason": "x"}),  # 404 for those allowed: no such drift
    ("GET", D + "/preview/{kind}"): (READ, None),  # 404 for readers: no such preview
    ("GET", "/ui/drift/orphans"): (ADMIN, None),
    ("POST", D + "/{action}"): (OPERATE_INT, {}),  # undeploy, in int (after the machine routes)
    ("GET", "/ui/audit"): (SIGNED_IN, None),
    ("GET", "/ui/audit/export"): (SIGNED_IN, None),
    ("GET", "/ui/audit/verify"): (ADMIN, None),
    ("GET", "/ui/users"): (ADMIN, None),
    ("POST", "/ui/users"): (ADMIN, {"username": "newbie", "password": "correct horse battery"}),
    ("POST", "/ui/users/{username}/{action}"): (ADMIN, {}),  # 404 for administrators: no such user here
    ("GET", "/ui/approvals"): (SIGNED_IN, None),
    # The world's request (a copy into 'spare') needs one member of the owners' group: not its requester.
    ("POST", "/ui/approvals/{approval_id}/decide"): ({"owner"}, {"decision": "approve", "reason": "fine"}),
    ("POST", "/ui/approvals/stop-the-line"): (ADMIN, {"action": "stop", "reason": "incident"}),  # last: it stops all
    ("POST", "/ui/archives"): (OPERATE_INT, {"deployment_id": "{deployment_id}"}),  # Archive Now, in int
    ("GET", "/ui/archives/{archive_id}"): (READ, None),
    ("POST", "/ui/archives/{archive_id}/restore"): (OPERATE_INT, {"stage": "int"}),  # over in_int: swap rights
    ("POST", "/ui/archives/{archive_id}/hold"): (OPERATE_INT, {"hold": "on"}),
    ("POST", "/ui/archives/{archive_id}/move"): (OPERATE_INT, {"tier": "LocalDS_1"}),  # 409: there already
    ("GET", "/ui/media"): (SIGNED_IN, None),
    ("POST", "/ui/media/upload"): (MANAGE, {"query": {"name": "x.iso"}}),  # 415 when allowed: a form, not an ISO
    ("POST", "/ui/media/{medium_id}/delete"): (ADMIN, {}),  # administrators and its uploader ("setup")
    ("GET", "/ui/storage"): (SIGNED_IN, None),
    # Single sign-on: public (they start and finish a sign-in), tested with a real provider in test_console_oidc.py.
    ("GET", "/ui/oidc/login"): (PUBLIC, None),
    ("GET", "/ui/oidc/callback"): (PUBLIC, None),
    ("GET", "/ui/tokens"): (SIGNED_IN, None),
    ("POST", "/ui/tokens"): (SIGNED_IN, {"name": "ci", "expires_in_days": "7"}),
    ("POST", "/ui/tokens/{token_id}/revoke"): (SIGNED_IN, {}),  # 404 unless it is the caller's own token
    ("POST", "/ui/leases/{deployment_id}"): (OPERATE_INT, {"keep": "true"}),
}  # fmt: skip


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    ids: dict[str, str]

    def sign_in(self, role: str) -> str:
        """Sign `role` in (a cookie as after the form); returns the session's CSRF token."""
        principal = PRINCIPALS[role]
        self.client.cookies.clear()
        if principal is None:
            return ""
        session = Session.start(principal, time.time())
        self.client.cookies.set(COOKIE, self.client.app.state.console.codec.encode(session))  # type: ignore[attr-defined]
        return session.csrf


def build_world() -> World:
    runtime = runtime_for("memory://")
    runtime.ensure_admin()
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    service_id = app.register_service(
        "payroll", "", [*stages("int", "test", "prod", restricted=("prod",)), *stages("spare")], actor="setup"
    ).value.id
    for role, user, group, stage in (
        ("service-owner", None, OWNERS, None),
        ("viewer", None, READERS, None),
        ("stage-operator", "oscar", None, "int"),
        ("stage-operator", "oscar", None, "test"),
        ("stage-operator", "petra", None, "prod"),
        ("stage-operator", "olivia", None, "test"),  # so an owner may capture into 'test'
    ):
        app.grant_role(service_id, role, user, group, stage, actor="setup")
    extra = app.grant_role(service_id, "viewer", "ex-employee", None, None, actor="setup").value
    pools = [{"cidr": "10.8.0.0/24", "gateway": "10.8.0.1"}]
    app.update_stage(service_id, "spare", {"ip_pools": pools}, actor="setup")
    configuration_id = app.create_configuration(
        service_id, "p", "", [{"name": "front"}, {"name": "spare"}], [machine("web1"), machine("app1")], "setup"
    ).value.id
    app.add_network(configuration_id, {"name": "extra"}, actor="setup")
    in_int = app.deploy(configuration_id, "int", actor="setup").value.id
    legacy = {"cpus": 2, "memory_mib": 2048, "ip": "10.50.0.7",
              "nics": [{"network": "VM Network", "mac": "00:0c:29:50:00:07", "adapter": "vmxnet3"}]}  # fmt: skip
    vcenter = runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    vcenter.add_existing_vm("LEGACY_1", ROOT_POOL, **legacy)  # a VM made before Stagekeeper (capture)
    medium = app.upload_medium("setup.iso", 4, [b"abcd"], "DC0", "LocalDS_0", 1024, actor="setup").value
    runtime.catch_up()
    app.update_stage(service_id, "spare", {"approvals": {"required": 1, "group": OWNERS}}, actor="setup")
    with pytest.raises(AwaitingApprovalError) as held:
        app.copy_deployment(in_int, "spare", actor="setup")
    archive_id = app.archive_now(in_int, actor="setup").value.id
    runtime.catch_up()
    ids = {
        "{approval_id}": str(held.value.approval.id),
        "{medium_id}": str(medium.id),
        "{service_id}": str(service_id), "{configuration_id}": str(configuration_id), "{stage}": "spare",
        "{grant_id}": extra["id"], "{name}": "web1", "{deployment_id}": str(in_int), "{action}": "undeploy",
        "{index}": "0", "{archive_id}": str(archive_id),
    }  # fmt: skip
    client = TestClient(create_app(settings_for("memory://"), runtime=runtime, start_workers=False))
    return World(client, runtime, ids)


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.runtime.close()


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # FastAPI keeps an included router whole (prefixes are already in its routes' paths).
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def ui_routes(client: TestClient) -> set[tuple[str, str]]:
    routes = set()
    for route in api_routes(client.app.routes):  # type: ignore[attr-defined]
        if route.path == "/" or route.path.startswith("/ui"):
            routes |= {(method, route.path) for method in route.methods or ()}
    return routes


def path_of(world: World, template: str) -> str:
    path = template
    if template.endswith("/networks/{name}/remove"):
        path = path.replace("{name}", "extra")
    for placeholder, value in world.ids.items():
        path = path.replace(placeholder, value)
    return path


def call(world: World, method: str, template: str, spec: Any, csrf: str | None) -> int:
    path = path_of(world, template)
    params = spec["query"] if isinstance(spec, dict) and "query" in spec else None
    data: dict[str, str] | None = None
    if params is None and isinstance(spec, dict):  # "{deployment_id}" in a form value: the world's id
        data = {str(k): str(world.ids.get(str(v), v)) for k, v in spec.items()}
    if method == "POST" and csrf is not None:
        data = {**(data or {}), "csrf": csrf}
    response = world.client.request(method, path, params=params, data=data, follow_redirects=False)
    assert response.status_code < 500, (method, path, response.text)
    return int(response.status_code)


def test_the_table_covers_every_console_route(world: World) -> None:
    assert ui_routes(world.client) == set(TABLE)


@pytest.mark.parametrize("role", list(PRINCIPALS))
def test_every_console_route_allows_exactly_the_roles_in_the_table(role: str) -> None:
    # One world per role: a refused call changes nothing, and an allowed one that removes what a
    # later call needs makes that call a 404 or 409, which still shows it was allowed.
    mistakes = []
    current = build_world()
    for (method, template), (allowed, spec) in TABLE.items():
        if template in ("/", "/ui/login") or template.startswith("/ui/oidc/"):
            continue  # public pages, tested below and in test_console_oidc.py
        if allowed is TICKET:
            status = call(current, method, template, {"query": {"vmId": "vm-1", "sessionTicket": "forged"}}, None)
            if status not in (403, 404):
                mistakes.append(f"{method} {template}: {status} (a forged console ticket must be refused)")
            continue
        if spec == STREAM and role != "anonymous":
            continue
        csrf = current.sign_in(role)  # again each time: "Sign out" is in the table
        status = call(current, method, template, spec, csrf)
        if role == "anonymous":
            expected = {303} if method == "GET" or template != "/ui/login" else {200}
            if status not in expected:
                mistakes.append(f"{method} {template}: {status} (anonymous should be sent to sign in)")
            continue
        granted = status not in (401, 403)
        if granted != (role in allowed):
            mistakes.append(f"{method} {template}: {status} ({'allowed' if granted else 'denied'})")
    current.runtime.close()
    assert mistakes == [], f"{role}: " + "; ".join(mistakes)


def test_every_console_post_without_the_session_token_is_refused_and_audited(world: World) -> None:
    for (method, template), (_, spec) in TABLE.items():
        if method != "POST" or template == "/ui/login":
            continue
        world.sign_in("admin")
        status = call(world, method, template, spec, csrf=None)
        assert status == 403, (template, status)
        world.sign_in("admin")
        assert call(world, method, template, spec, csrf="forged-token") == 403, template
    world.runtime.catch_up()
    refusals, _ = world.runtime.audit.page(AuditFilter(event_type="Refusal.Recorded"), None, 1000)
    assert len(refusals) >= 2 * sum(1 for (m, t) in TABLE if m == "POST" and t != "/ui/login")
    assert {r["actor"] for r in refusals} == {"alice"}
    assert "security token" in refusals[0]["summary"]


def test_a_viewer_is_offered_no_action_and_a_forged_form_is_refused(world: World) -> None:
    csrf = world.sign_in("viewer")
    for template in (
        "/ui/services/{service_id}",
        "/ui/configurations/{configuration_id}",
        "/ui/deployments/{deployment_id}",
    ):
        page = world.client.get(path_of(world, template)).text
        assert re.findall(r'<form method="post" action="(?!/ui/logout)', page) == [], template
        for verb in ("Deploy", "Promote", "Demote", "Undeploy", "Retry", "Restore", "Add machine", "Grant", "Capture"):
            assert f">{verb}</button>" not in page, (template, verb)
    forged = world.client.post(
        path_of(world, "/ui/deployments/{deployment_id}/undeploy"), data={"csrf": csrf}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert "victor is neither an owner" in forged.text
    assert world.runtime.app.deployment(UUID(world.ids["{deployment_id}"])).state == "deployed"
