"""The shared template catalogue: vCenter templates imported once, usable by every service."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import NotFoundError
from domain.values import normalise_key

CATALOGUE_ID: UUID = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/template-catalogue")


class TemplateCatalogue(Aggregate):
    TOPIC = "stagekeeper:TemplateCatalogue"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:TemplateCatalogue.Created"

    @staticmethod
    def create_id() -> UUID:
        return CATALOGUE_ID

    @event("Opened", topic="stagekeeper:TemplateCatalogue.Opened")
    def __init__(self) -> None:
        self.templates: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> dict[str, Any] | None:
        return self.templates.get(normalise_key(name))

    def import_templates(self, templates: list[dict[str, Any]], actor: str, reason: str | None) -> list[str]:
        """Record templates that are new or changed; returns the names recorded."""
        changed = [t for t in templates if self.templates.get(normalise_key(t["name"])) != t]
        if changed:
            self._imported(templates=changed, actor=actor, reason=reason)
        return [t["name"] for t in changed]

    @event("TemplatesImported", topic="stagekeeper:TemplateCatalogue.TemplatesImported")
    def _imported(self, templates: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        for template in templates:
            self.templates[normalise_key(template["name"])] = template

    def remove_template(self, name: str, actor: str, reason: str | None) -> dict[str, Any]:
        """Take a template out of the catalogue (vCenter keeps it); returns its record."""
        record = self.get(name)
        if record is None:
            raise NotFoundError(f"no template named '{name}' in the catalogue", field="name")
        self._removed(name=record["name"], actor=actor, reason=reason)
        return record

    @event("TemplateRemoved", topic="stagekeeper:TemplateCatalogue.TemplateRemoved")
    def _removed(self, name: str, actor: str, reason: str | None) -> None:
        self.templates.pop(normalise_key(name), None)
