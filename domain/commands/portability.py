"""Export a service to one signed file and import it into another instance (domain/portability.py).

The import writes the file's events as they are (same ids, versions, times, actors) once every state
they lead to passes the commands' rules (domain/import_rules.py: the chain proves that the file is
whole, not who wrote it), the service's and configurations' name claims and its resource pools and
IP ranges in the plans, a
`DeploymentReleased` for every deployment the service still counted (deployments stay in the source
instance), and a `Service.Imported` event naming the file's head hash: all in one atomic write,
refused whole on any collision."""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

from domain.application import Outcome
from domain.commands.placement import PlacementCommands
from domain.configuration import Configuration
from domain.errors import ConflictError, ValidationError
from domain.import_rules import check_imported
from domain.portability import bundle, check_seal, seal, verify
from domain.service import Service
from domain.text import check_reason

SERVICE_NAMES = "service"
CONFIGURATION_NAMES = "configuration"
KIND_TOPICS = {"service": "stagekeeper:Service.", "configuration": "stagekeeper:Configuration."}


class PortabilityCommands(PlacementCommands):
    # STAGEKEEPER_EXPORT_KEY (adapters/runtime.py): exports are sealed with it, imports must carry it.
    export_key: bytes | None = None

    def _records(self, kind: str, aggregate_id: UUID) -> list[dict[str, Any]]:
        records = []
        for event in self.events.get(aggregate_id):
            stored = self.mapper.to_stored_event(event)
            records.append(
                {
                    "aggregate": kind,
                    "originator_id": str(stored.originator_id),
                    "originator_version": stored.originator_version,
                    "topic": stored.topic,
                    "state": json.loads(stored.state),
                }
            )
        return records

    def export_service(self, service_id: UUID, configuration_ids: list[UUID], actor: str) -> dict[str, Any]:
        """The service and the given configurations (its own, retired ones included) as a signed file."""
        service = self.load(Service, service_id, "service")
        records = self._records("service", service_id)
        for configuration_id in sorted(configuration_ids, key=str):
            configuration = self.load(Configuration, configuration_id, "configuration")
            if configuration.service_id != service_id:
                raise ValidationError(f"configuration {configuration_id} is not the service's", field="configuration")
            records.extend(self._records("configuration", configuration_id))
        summary = {"id": str(service.id), "name": service.name, "configurations": len(configuration_ids)}
        document = bundle(records, summary, actor, self.clock.now().isoformat())
        if self.export_key is not None:
            document["chain"]["hmac"] = seal(self.export_key, document["chain"]["count"], document["chain"]["head"])
        return document

    def _decode(self, record: dict[str, Any], index: int) -> Any:
        prefix = KIND_TOPICS[record["aggregate"]]
        topic = record["topic"]
        if not isinstance(topic, str) or not topic.startswith(prefix):
            raise ValidationError(f"records[{index}] has a topic this aggregate cannot have", field=f"records[{index}]")
        try:
            stored = StoredEvent(
                originator_id=UUID(str(record["originator_id"])),
                originator_version=int(record["originator_version"]),
                topic=topic,
                state=json.dumps(record["state"]).encode(),
            )
            return self.mapper.to_domain_event(stored)
        except Exception as error:
            raise ValidationError(f"records[{index}] cannot be read: {error}", field=f"records[{index}]") from None

    def import_service(self, document: object, actor: str, reason: str | None = None) -> Outcome[Service]:
        reason = check_reason(reason)
        records = verify(document)
        if self.export_key is not None:
            check_seal(cast(dict[str, Any], document), self.export_key)
        grouped: dict[UUID, list[Any]] = {}
        kinds: dict[UUID, str] = {}
        positions: dict[UUID, list[int]] = {}
        for index, record in enumerate(records):
            event = self._decode(record, index)
            aggregate_id = cast(UUID, event.originator_id)
            events = grouped.setdefault(aggregate_id, [])
            if (
                event.originator_version != len(events) + 1
                or kinds.setdefault(aggregate_id, record["aggregate"]) != (record["aggregate"])
            ):
                raise ValidationError(f"records[{index}] is out of order for its aggregate", field=f"records[{index}]")
            events.append(event)
            positions.setdefault(aggregate_id, []).append(index)
        services = [i for i, kind in kinds.items() if kind == "service"]
        if len(services) != 1:
            raise ValidationError("the file must hold exactly one service", field="records")
        aggregates: dict[UUID, Aggregate] = {}
        for aggregate_id, events in grouped.items():
            if self._exists(aggregate_id):
                raise ConflictError(f"{kinds[aggregate_id]} {aggregate_id} exists here already (imported before?)")
            aggregate: Any = None
            for event, index in zip(events, positions[aggregate_id], strict=True):
                aggregate = event.mutate(aggregate)
                _checked(aggregate, index, str(records[index]["topic"]))
            # Saved as they are: the file's events keep their ids, versions, times and actors.
            aggregate._pending_events.extend(events)
            aggregates[aggregate_id] = aggregate
        service = cast(Service, aggregates[services[0]])
        if not isinstance(service, Service):
            raise ValidationError("the service record does not make a service", field="records")
        configurations = [a for a in aggregates.values() if isinstance(a, Configuration)]
        if any(c.service_id != service.id for c in configurations):
            raise ValidationError("a configuration in the file belongs to another service", field="records")
        head = cast(dict[str, Any], document)["chain"]["head"]
        for stage_deployments in list(service.occupancy.values()):
            for deployment_id in list(stage_deployments):
                service.release(UUID(deployment_id), None, actor=actor)
        service.record_import(str(head), len(records), actor, reason)
        writes: list[Aggregate] = []
        if not service.retired:
            writes.append(self.claim_name(SERVICE_NAMES, "", service.name, service.id))
            for configuration in configurations:
                if not configuration.retired:
                    writes.append(
                        self.claim_name(CONFIGURATION_NAMES, str(service.id), configuration.name, configuration.id)
                    )
            writes.extend(self.placement_writes(service, None, "stages", "stages"))
        position = self.commit(service, *configurations, *writes)
        return Outcome(service, position)


def _checked(aggregate: Any, index: int, topic: str) -> None:
    """The state after records[index] must be one the commands could have written."""
    try:
        check_imported(aggregate)
    except ValidationError as error:
        where = f"records[{index}]"
        raise ValidationError(
            f"{where} ({topic}) leads to a state the commands refuse: {error.message}",
            field=f"{where}.{error.field}" if error.field else where,
        ) from None
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValidationError(
            f"records[{index}] ({topic}) leads to a malformed state: {error!r}", field=f"records[{index}]"
        ) from None
