"""What the process manager records as a failure, and what it raises (to be retried)."""

from __future__ import annotations

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import NotFoundError, VCenterFaultError
from domain.ports import CloneSpec
from tests.support import ROOT_POOL, THREE_TIER, stages


def test_a_failed_domain_lookup_is_raised_not_recorded_as_a_vcenter_failure(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    service_id = runtime.app.register_service("s", "", stages("int", "test"), actor="a").value.id
    configuration_id = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    # A VM made by hand in vCenter, tagged with this deployment and a machine it does not have:
    # the deployment's own lookup of that machine fails, which is not a vCenter fault.
    vcenter.clone(
        CloneSpec(
            vm_name="hand-made", template="tpl-ubuntu-2404", resource_pool=f"{ROOT_POOL}/int-pool", linked=False,
            cpus=1, memory_mib=512, deployment_id=deployment_id, machine="stray",
        )
    )  # fmt: skip
    runtime.app.promote(deployment_id, actor="b")
    with pytest.raises(NotFoundError, match="stray") as raised:
        runtime.catch_up()
    assert not isinstance(raised.value, VCenterFaultError)
    # Nothing was recorded as a failed move: the follower retries the event (and /healthz shows it).
    assert runtime.app.deployment(deployment_id).state == "promoting"
