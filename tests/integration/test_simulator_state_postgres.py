"""The simulated vCenter on PostgreSQL keeps its inventory across restarts, by default."""

from __future__ import annotations

from adapters.runtime import Runtime
from tests.support import THREE_TIER, FixedClock, postgres_schema, settings_for, stages


def test_simulated_vms_survive_a_restart_on_postgres_without_any_simulator_setting() -> None:
    with postgres_schema() as url:
        settings = settings_for(url)
        assert settings.simulator_state is None
        first = Runtime(settings, clock=FixedClock())  # the simulated driver, built from settings
        try:
            first.app.import_templates(None, True, actor="a")
            service_id = first.app.register_service("s", "", stages("int"), actor="a").value.id
            configuration_id = first.app.create_configuration(
                service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="a"
            ).value.id
            deployment_id = first.app.deploy(configuration_id, "int", actor="a").value.id
            first.catch_up()
            assert first.app.deployment(deployment_id).state == "deployed"
            built = sorted(vm.name for vm in first.vcenter.find_vms(deployment_id))
            assert len(built) == 4
        finally:
            first.close()

        second = Runtime(settings, clock=FixedClock())
        try:
            assert sorted(vm.name for vm in second.vcenter.find_vms(deployment_id)) == built
            # The restarted service can act on them: undeploy destroys what the first one built.
            second.app.undeploy(deployment_id, actor="a")
            second.catch_up()
            assert second.app.deployment(deployment_id).state == "undeployed"
            assert second.vcenter.find_vms(deployment_id) == []
        finally:
            second.close()
