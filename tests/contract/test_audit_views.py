"""What the audit shows by default, and what an explicit filter adds (on every persistence)."""

from __future__ import annotations

from adapters.runtime import Runtime
from projections.audit_queries import AuditFilter
from tests.support import stages


def types(runtime: Runtime, filters: AuditFilter) -> list[str]:
    items, _ = runtime.audit.page(filters, None, 1000)
    return [str(i["event_type"]) for i in items]


def test_name_claims_stay_out_of_the_default_view_but_an_explicit_filter_shows_them(runtime: Runtime) -> None:
    runtime.app.register_service("payroll", "", stages("int"), actor="a")
    runtime.app.register_service("hr", "", stages("int"), actor="a")
    runtime.catch_up()
    shown = types(runtime, AuditFilter())
    assert "Service.Registered" in shown
    assert not [t for t in shown if t.startswith("NameClaim.")]
    everything = types(runtime, AuditFilter(include_system=True))
    assert everything.count("NameClaim.Claimed") == 2
    assert len(everything) == runtime.app.head()
    assert types(runtime, AuditFilter(event_type="NameClaim.")) == ["NameClaim.Claimed"] * 2
    assert types(runtime, AuditFilter(event_type="NameClaim.Claimed")) == ["NameClaim.Claimed"] * 2
