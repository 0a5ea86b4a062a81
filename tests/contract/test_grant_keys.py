"""Grants match a caller one way, whether a read loads one service or lists many."""

from __future__ import annotations

import unicodedata

from adapters.runtime import Runtime
from api.access import readable_service_ids
from api.auth import Principal
from domain.permissions import can_read
from tests.support import stages


def test_a_grant_to_a_decomposed_name_lets_its_user_list_what_they_may_read(runtime: Runtime) -> None:
    app = runtime.app
    service = app.register_service("payroll", "", stages("int"), actor="admin").value
    group = "cn=Équipe,ou=groups,dc=example,dc=com"
    app.grant_role(service.id, "viewer", "zoe\u0308", None, None, actor="admin")  # NFD: e + combining diaeresis
    other = app.register_service("hr", "", stages("int", pools="hr-"), actor="admin").value
    app.grant_role(other.id, "viewer", None, unicodedata.normalize("NFD", group), None, actor="admin")
    runtime.catch_up()
    zoe = Principal(user="ZOË", is_admin=False, via="password")  # NFC, another case
    member = Principal(user="someone", is_admin=False, via="password", groups=frozenset({group.upper()}))

    # The single read (GET /services/{id}) and the lists (/services, /deployments, /board) agree.
    assert can_read(list(app.service(service.id).grants.values()), zoe.caller)
    assert readable_service_ids(runtime, zoe) == {str(service.id)}
    assert [g["role"] for g in runtime.read_models.grants_of(zoe.user, zoe.groups)] == ["viewer"]  # /me
    assert can_read(list(app.service(other.id).grants.values()), member.caller)
    assert readable_service_ids(runtime, member) == {str(other.id)}
