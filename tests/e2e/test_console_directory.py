"""Console sessions follow the directory: a user taken out of a group loses its roles in the console
as in the API, without signing out (a slapd of its own, changed by its root account)."""

from __future__ import annotations

from pathlib import Path

import ldap3
from fastapi.testclient import TestClient

from adapters.ldap_directory import LdapDirectory, LdapSettings
from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from scripts.slapd_harness import ADMIN_GROUP, BIND_DN, BIND_PASSWORD, GROUP_BASE, READERS, USER_BASE
from scripts.slapd_harness import start as start_slapd
from tests.e2e.test_console_pages import sign_in_form
from tests.support import FixedClock, stages

ROOT_DN, ROOT_PASSWORD = "cn=root,dc=stagekeeper,dc=test", "root-secret"


def test_a_user_removed_from_a_group_loses_its_role_in_an_open_session(tmp_path: Path) -> None:
    slapd = start_slapd(tmp_path)
    config = Settings(
        database_url="memory://", admin_password="secret-pw", poll_seconds=0.05, ldap_url=slapd.url,
        ldap_bind_dn=BIND_DN, ldap_bind_password=BIND_PASSWORD, ldap_user_base=USER_BASE,
        ldap_group_base=GROUP_BASE, ldap_admin_group=ADMIN_GROUP, credential_cache_seconds=0,
    )  # fmt: skip
    # Neither the directory nor the console keeps groups: the change shows on the next request.
    directory = LdapDirectory(
        LdapSettings(url=slapd.url, bind_dn=BIND_DN, bind_password=BIND_PASSWORD, user_base=USER_BASE,
                     group_base=GROUP_BASE, group_cache_seconds=0)
    )  # fmt: skip
    runtime = Runtime(config, vcenter=SimulatedVCenter(), clock=FixedClock(), directory=directory)
    try:
        service_id = runtime.app.register_service("payroll", "", stages("int"), actor="setup").value.id
        runtime.app.grant_role(service_id, "viewer", None, READERS, None, actor="setup")
        runtime.catch_up()
        client = sign_in_form(
            TestClient(create_app(config, runtime=runtime, start_workers=False)), "victor", "victor-pw"
        )
        assert client.get(f"/ui/services/{service_id}").status_code == 200
        with ldap3.Connection(slapd.url, ROOT_DN, ROOT_PASSWORD, auto_bind=True) as root:
            # groupOfNames needs a member: someone else takes his place.
            assert root.modify(READERS, {"member": [(ldap3.MODIFY_REPLACE, [f"uid=nobody,{USER_BASE}"])]}), root.result
        refused = client.get(f"/ui/services/{service_id}")
        assert refused.status_code == 403
        assert "victor holds no role on service" in refused.text
    finally:
        runtime.close()
        slapd.stop()
