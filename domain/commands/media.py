"""Media library commands: upload an ISO to the datastore, delete it, and the rules that tie
configurations and deployments to the library (an attached ISO must exist; an attached ISO
cannot be deleted)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.application import Outcome, StagekeeperApplication
from domain.configuration import Configuration
from domain.deployment import UNDEPLOYED, Deployment
from domain.errors import ConflictError, InfrastructureError, NotFoundError, ValidationError
from domain.media import MEDIUM_KIND, MEDIUM_SCOPE, Medium, check_medium_name, medium_path
from domain.media_ports import datastore_files
from domain.names import NameClaim
from domain.text import check_reason

log = logging.getLogger(__name__)

MAX_NAMED = 10  # attachments named in a refusal; the rest are counted


def medium_named(app: StagekeeperApplication, name: str) -> Medium | None:
    """The library's medium of that name now (None: no such medium, or deleted)."""
    try:
        claim: Aggregate = app.repository.get(NameClaim.id_for(MEDIUM_KIND, MEDIUM_SCOPE, name))
    except AggregateNotFoundError:
        return None
    if not isinstance(claim, NameClaim) or claim.owner_id is None:
        return None
    medium: Aggregate = app.repository.get(claim.owner_id)
    return medium if isinstance(medium, Medium) and not medium.deleted else None


def check_machine_media(app: StagekeeperApplication, machines: Iterable[Any], field: str = "machines") -> None:
    """Each machine's `iso` (when set) names a medium of the library (422 naming the machine)."""
    for i, machine in enumerate(machines):
        iso = getattr(machine, "iso", None)
        if iso is not None and medium_named(app, iso) is None:
            where = f"{field}[{i}]" if field == "machines" else field
            raise ValidationError(
                f"{where}.iso: no medium named '{iso}' in the media library (upload it with POST /api/v1/media)",
                field=f"{where}.iso",
            )


def check_deployable_media(app: StagekeeperApplication, configuration: str, machines: list[dict[str, Any]]) -> None:
    """Refuse (409) a deploy whose machines attach an ISO the library no longer has."""
    for machine in machines:
        iso = machine.get("iso")
        if iso is not None and medium_named(app, iso) is None:
            raise ConflictError(
                f"machine '{machine['name']}' of configuration '{configuration}' attaches the ISO '{iso}', "
                "which the media library no longer has: upload it again or change the machine",
                field="configuration",
            )


class MediaCommands(StagekeeperApplication):
    def medium(self, medium_id: UUID) -> Medium:
        return self.load(Medium, medium_id, "medium")

    def medium_named(self, name: str) -> Medium | None:
        return medium_named(self, name)

    def upload_medium(
        self,
        name: object,
        size: object,
        chunks: Iterable[bytes],
        datacenter: str,
        datastore: str,
        max_bytes: int,
        actor: str,
        reason: str | None = None,
    ) -> Outcome[Medium]:
        """Stream an ISO to the media datastore and record it (size and SHA-256 as received)."""
        reason = check_reason(reason)
        name = check_medium_name(name)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= max_bytes:
            raise ValidationError(f"the upload must be 1 to {max_bytes} bytes", field="Content-Length")
        if medium_named(self, name) is not None:
            raise ConflictError(f"the medium name '{name}' is already taken", field="name")
        medium_id = uuid4()
        path = medium_path(medium_id)
        digest = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for chunk in chunks:
                digest.update(chunk)
                yield chunk

        files = datastore_files(self.vcenter)
        files.upload_file(datacenter, datastore, path, hashed(), size)

        def attempt() -> Outcome[Medium]:
            claim = self.claim_name(MEDIUM_KIND, MEDIUM_SCOPE, name, medium_id)
            medium = Medium(
                name=name, datacenter=datacenter, datastore=datastore, path=path, size=size,
                sha256=digest.hexdigest(), actor=actor, reason=reason, id=medium_id,
            )  # fmt: skip
            return Outcome(medium, self.commit(medium, claim))

        try:
            return self.retrying(attempt)
        except BaseException:
            # Lost the name to a concurrent upload (or could not record it): the file goes.
            try:
                files.delete_file(datacenter, datastore, path)
            except InfrastructureError as fault:
                log.warning("unrecorded upload [%s] %s left on the datastore: %s", datastore, path, fault.message)
            raise

    def media_attachments(
        self, name: str, configuration_ids: Iterable[UUID], deployment_ids: Iterable[UUID]
    ) -> list[str]:
        """Who attaches the medium now: the current version of active configurations, and live
        deployments (built from any version), as readable names."""
        found: list[str] = []
        for configuration_id in configuration_ids:
            with suppress(AggregateNotFoundError):
                configuration: Aggregate = self.repository.get(configuration_id)
                if isinstance(configuration, Configuration) and not configuration.retired:
                    found += [
                        f"configuration '{configuration.name}' ({configuration.id}) machine '{m['name']}'"
                        for m in configuration.machines
                        if m.get("iso") == name
                    ]
        for deployment_id in deployment_ids:
            with suppress(AggregateNotFoundError):
                deployment: Aggregate = self.repository.get(deployment_id)
                if isinstance(deployment, Deployment) and deployment.state != UNDEPLOYED:
                    found += [
                        f"deployment {deployment.id} machine '{m['name']}'"
                        for m in deployment.machines
                        if m["spec"].get("iso") == name
                    ]
        return found

    def delete_medium(
        self,
        medium_id: UUID,
        configuration_ids: Iterable[UUID],
        deployment_ids: Iterable[UUID],
        actor: str,
        reason: str | None = None,
    ) -> Outcome[Medium]:
        """Delete a medium no configuration or live deployment attaches (409 naming them), then its file."""
        reason = check_reason(reason)
        medium = self.medium(medium_id)
        if medium.deleted:
            raise NotFoundError(f"no medium with id {medium_id}")
        attached = self.media_attachments(medium.name, list(configuration_ids), list(deployment_ids))
        if attached:
            more = f" and {len(attached) - MAX_NAMED} more" if len(attached) > MAX_NAMED else ""
            raise ConflictError(
                f"medium '{medium.name}' is attached to {'; '.join(attached[:MAX_NAMED])}{more}: detach it first",
                field="medium_id",
            )

        def attempt() -> Outcome[Medium]:
            current = self.medium(medium_id)
            current.delete(actor, reason)
            claim = self.release_name(MEDIUM_KIND, MEDIUM_SCOPE, current.name)
            return Outcome(current, self.commit(current, *([claim] if claim is not None else [])))

        outcome = self.retrying(attempt)
        # Recorded first: a file left behind by a vCenter fault is an orphan, never a dangling record.
        try:
            datastore_files(self.vcenter).delete_file(medium.datacenter, medium.datastore, medium.path)
        except InfrastructureError as fault:
            log.warning("deleted medium's file %s left on the datastore: %s", medium.datastore_path, fault.message)
        return outcome
