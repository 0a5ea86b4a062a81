"""Configuration commands: define, revise, restore."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from domain.application import Outcome, StagekeeperApplication
from domain.catalogue import TemplateCatalogue
from domain.commands.media import check_machine_media
from domain.configuration import Configuration, check_definition
from domain.deployment import Deployment
from domain.errors import InvalidTransitionError, ValidationError
from domain.service import Service
from domain.text import check_reason
from domain.values import (
    Machine,
    Network,
    check_description,
    check_display_name,
    check_version_number,
    normalise_key,
)

CONFIGURATION_NAMES = "configuration"


def parse_networks(value: object, field: str = "networks") -> list[Network]:
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list", field=field)
    return [Network.parse(n, f"{field}[{i}]") for i, n in enumerate(value)]


def parse_machines(value: object, catalogue: TemplateCatalogue, field: str = "machines") -> list[Machine]:
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list", field=field)
    return [Machine.parse(m, f"{field}[{i}]", template_info(catalogue, m)) for i, m in enumerate(value)]


def template_info(catalogue: TemplateCatalogue, machine: object) -> dict[str, Any] | None:
    """The catalogue's record of the template a machine names: it sizes a machine given no size."""
    template = machine.get("template") if isinstance(machine, dict) else None
    return catalogue.get(template) if isinstance(template, str) else None


class ConfigurationCommands(StagekeeperApplication):
    def configuration(self, configuration_id: UUID, version: int | None = None) -> Configuration:
        return self.load(Configuration, configuration_id, "configuration", version=version)

    def check_templates(
        self, machines: list[Machine], field: str = "machines", captured_in: Configuration | None = None
    ) -> None:
        """Machines may only use catalogue templates, with a matching OS family (a machine still
        captured from its VM in `captured_in`, the version revised, keeps that VM as template)."""
        catalogue = self.catalogue()
        for i, machine in enumerate(machines):
            if captured_in is not None and captured_in.captured_source(machine) is not None:
                continue
            where = f"{field}[{i}]" if field == "machines" else field
            template = catalogue.get(machine.template)
            if template is None:
                raise ValidationError(
                    f"{where}.template: '{machine.template}' is not in the template catalogue "
                    "(import it with POST /api/v1/templates/import)",
                    field=f"{where}.template",
                )
            if template["os_family"] != machine.customization.os:
                raise ValidationError(
                    f"{where}.customization.os is {machine.customization.os} but template "
                    f"'{template['name']}' is {template['os_family']}",
                    field=f"{where}.customization.os",
                )
        check_machine_media(self, machines, field)

    def create_configuration(
        self,
        service_id: UUID,
        name: object,
        description: object,
        networks: object,
        machines: object,
        actor: str,
        reason: str | None = None,
    ) -> Outcome[Configuration]:
        """Define a new configuration (version 1) of a service; the name is unique in the service."""
        reason = check_reason(reason)
        name = check_display_name(name, "name")
        text = check_description(description)
        parsed_networks = parse_networks(networks if networks is not None else [])
        parsed_machines = parse_machines(machines if machines is not None else [], self.catalogue())
        check_definition(parsed_networks, parsed_machines)
        self.check_templates(parsed_machines)

        def attempt() -> Outcome[Configuration]:
            service = self.load_service_for(service_id)
            configuration = Configuration(
                service_id=service.id,
                name=name,
                description=text,
                networks=[n.to_dict() for n in parsed_networks],
                machines=[m.to_dict() for m in parsed_machines],
                actor=actor,
                reason=reason,
            )
            claim = self.claim_name(CONFIGURATION_NAMES, str(service.id), name, configuration.id)
            return Outcome(configuration, self.commit(configuration, claim))

        return self.retrying(attempt)

    def load_service_for(self, service_id: UUID) -> Service:
        service = self.load(Service, service_id, "service")
        if service.retired:
            raise InvalidTransitionError(f"service '{service.name}' is retired")
        return service

    def _name_change(self, configuration: Configuration, new_name: str) -> list[Any]:
        """Claims to save with a rename: the new name taken, the old one released."""
        if new_name == configuration.name:
            return []
        scope = str(configuration.service_id)
        claims: list[Any] = [self.claim_name(CONFIGURATION_NAMES, scope, new_name, configuration.id)]
        if normalise_key(new_name) != normalise_key(configuration.name):
            released = self.release_name(CONFIGURATION_NAMES, scope, configuration.name)
            claims.extend([released] if released else [])
        return claims

    def _change_configuration(
        self,
        configuration_id: UUID,
        expected_version: int | None,
        change: Callable[[Configuration], list[Any] | None],
    ) -> Outcome[Configuration]:
        def attempt() -> Outcome[Configuration]:
            configuration = self.configuration(configuration_id)
            self.check_version(configuration, expected_version, "configuration")
            configuration.check_active()
            others = change(configuration) or []
            return Outcome(configuration, self.commit(configuration, *others))

        return self.retrying(attempt)

    def revise_configuration(
        self,
        configuration_id: UUID,
        changes: dict[str, Any],
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Rename and/or replace description, networks, machines. Each changed part is one version."""
        reason = check_reason(reason)
        unknown = set(changes) - {"name", "description", "networks", "machines"}
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        new_name = check_display_name(changes["name"], "name") if "name" in changes else None
        text = check_description(changes["description"]) if "description" in changes else None
        networks = parse_networks(changes["networks"]) if "networks" in changes else None
        machines = parse_machines(changes["machines"], self.catalogue()) if "machines" in changes else None
        if machines is not None:
            # A captured machine keeps its VM as template (copies and upgrades act on the VM itself).
            self.check_templates(machines, captured_in=self.load(Configuration, configuration_id, "configuration"))

        def change(configuration: Configuration) -> list[Any]:
            configuration.revise(text, networks, machines, actor, reason)
            if new_name is None or new_name == configuration.name:
                return []
            claims = self._name_change(configuration, new_name)
            configuration.rename(new_name, actor, reason)
            return claims

        return self._change_configuration(configuration_id, expected_version, change)

    def add_machine(
        self,
        configuration_id: UUID,
        machine: object,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Add one machine."""
        reason = check_reason(reason)
        parsed = Machine.parse(machine, "machine", template_info(self.catalogue(), machine))
        self.check_templates([parsed], "machine")
        return self._change_configuration(
            configuration_id, expected_version, lambda c: c.add_machine(parsed, actor, reason)
        )

    def change_machine(
        self,
        configuration_id: UUID,
        name: str,
        machine: object,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Replace one machine's definition (a captured machine keeps its VM as template)."""
        reason = check_reason(reason)
        parsed = Machine.parse(machine, "machine", template_info(self.catalogue(), machine))
        self.check_templates(
            [parsed], "machine", captured_in=self.load(Configuration, configuration_id, "configuration")
        )
        return self._change_configuration(
            configuration_id,
            expected_version,
            lambda c: c.change_machine(name, parsed, actor, reason),
        )

    def remove_machine(
        self,
        configuration_id: UUID,
        name: str,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Remove one machine."""
        reason = check_reason(reason)
        return self._change_configuration(
            configuration_id, expected_version, lambda c: c.remove_machine(name, actor, reason)
        )

    def add_network(
        self,
        configuration_id: UUID,
        network: object,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Add one network."""
        reason = check_reason(reason)
        parsed = Network.parse(network, "network")
        return self._change_configuration(
            configuration_id, expected_version, lambda c: c.add_network(parsed, actor, reason)
        )

    def remove_network(
        self,
        configuration_id: UUID,
        name: str,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Remove a network no machine uses."""
        reason = check_reason(reason)
        return self._change_configuration(
            configuration_id, expected_version, lambda c: c.remove_network(name, actor, reason)
        )

    def retire_configuration(
        self,
        configuration_id: UUID,
        actor: str,
        reason: object,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Retire a configuration with no live deployment: it keeps its history, takes no deploy
        and no change, and its name is free again."""
        checked = check_reason(reason)
        if checked is None or not checked.strip():
            raise ValidationError("say why the configuration is retired", field="reason")
        reason = checked

        def attempt() -> Outcome[Configuration]:
            configuration = self.configuration(configuration_id)
            self.check_version(configuration, expected_version, "configuration")
            service = self.load(Service, configuration.service_id, "service")
            live = []
            for stage in service.stages:
                for deployment_id in service.live_deployments(stage["name"]):
                    deployment = self.load(Deployment, UUID(deployment_id), "deployment")
                    if deployment.configuration_id == configuration.id:
                        live.append(f"{deployment_id} ({deployment.state} in {stage['name']})")
            configuration.retire(live, actor, reason)
            # The service is written too: a deploy racing this one writes it as well, so one loses.
            service.record_configuration_retired(configuration.id, configuration.name, actor, reason)
            released = self.release_name(CONFIGURATION_NAMES, str(service.id), configuration.name)
            return Outcome(configuration, self.commit(configuration, service, *([released] if released else [])))

        return self.retrying(attempt)

    def restore_configuration(
        self,
        configuration_id: UUID,
        version: int,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Configuration]:
        """Make the configuration what it was at `version`, as a new version (history is kept)."""
        reason = check_reason(reason)
        current = self.configuration(configuration_id)
        check_version_number(version, current.version, "version")
        definition = self.definition_at(configuration_id, version)

        def change(configuration: Configuration) -> list[Any]:
            claims = self._name_change(configuration, definition["name"])
            configuration.restore(version, definition, actor, reason)
            return claims

        return self._change_configuration(configuration_id, expected_version, change)
